"""Databases the report, API and notebook tests read: built once per session, for real.

``demo_db``: the demo pipeline (`iqb sample` -> `iqb extract run` -> `dbt build`)
on a small synthetic sample, two months, every level. ``real_db``: M-Lab's real
October 2024 country files through `dbt build`. Tests must not write to them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.dbt.helpers import IQB, copy_real_october, dbt, env

DEMO_ROWS = 30_000  # per month: ZA and other big countries meet 100 tests, small ones are thin


def run_iqb(*args: str, artifacts: Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(IQB), *args, "--artifacts", str(artifacts)],
        cwd=cwd,
        env=env(artifacts),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "artifacts"
    for args in (
        ("sample", "--config", "pipeline.demo.yaml", "--rows", str(DEMO_ROWS)),
        ("extract", "run", "--config", "pipeline.demo.yaml"),
    ):
        proc = run_iqb(*args, artifacts=root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    dbt("build", artifacts=root, target=root.parent / "target")
    return root


@pytest.fixture(scope="session")
def real_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real") / "artifacts"
    copy_real_october(root)
    dbt("build", artifacts=root, target=root.parent / "target")
    return root
