"""Fixtures of the dbt tests: databases built once and shared, read-only, by many tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dbt.helpers import DbtRun, copy_real_october, dbt


@dataclass(frozen=True)
class Built:
    artifacts: Path  # the artifacts root (IQB_ARTIFACTS) holding the cache and iqb.duckdb
    target: Path  # dbt's target directory of the build
    run: DbtRun


@pytest.fixture(scope="session")
def real_october(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A full `dbt build` over M-Lab's real October 2024 country files, built once.

    Only the two country datasets have files, as in the real fixtures: the ten
    other datasets are missing from the cache altogether. Tests must not write
    to this database.
    """
    root = tmp_path_factory.mktemp("real_october") / "artifacts"
    copy_real_october(root)
    target = root.parent / "target"
    return Built(root, target, dbt("build", artifacts=root, target=target))
