"""Where dbt reads and writes: the artifacts root, whatever the working directory.

dbt resolves relative paths against the working directory, so the profile
anchors the default root on the profiles directory (<repo>/artifacts) and
otherwise follows IQB_ARTIFACTS like the extractor; extract/paths.py names
every path under that root, and dbt must open the working database it names
(readers open the published one beside it). The
default is tested in a copy of the repo's dbt files, so the real ./artifacts
is never touched.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest

from extract.cache.layout import PERIOD_SQL_RE
from extract.paths import ENV_ARTIFACTS, ArtifactPaths, checkout_artifacts, default_artifacts
from tests.conftest import REPO
from tests.dbt.helpers import copy_real_october, dbt, query, repo_copy

if TYPE_CHECKING:  # the fixture's type only: conftest is pytest's to import
    from tests.dbt.conftest import Built

pytestmark = pytest.mark.slow

SELECT = ("--select", "+iqb_scores_by_country")  # the country mart, its scores, their tests
# what readers open, and dbt's own working database beside the rest of the state
DATABASES = [Path("artifacts/iqb.duckdb"), Path("artifacts/state/dbt/iqb.duckdb")]


def duckdb_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*.duckdb"))


def test_both_invocation_styles_write_the_same_file(tmp_path: Path) -> None:
    repo = repo_copy(tmp_path)
    artifacts = repo / "artifacts"
    copy_real_october(artifacts)

    # 1. from the repo root
    first = dbt("build", *SELECT, artifacts=None, target=tmp_path / "t1", cwd=repo)
    assert duckdb_files(repo) == DATABASES
    [(loaded_at,)] = query(artifacts, "select distinct loaded_at from quality_by_country")
    assert "quality_by_country: 1 period(s) to process" in first.output  # first build: all

    # 2. from inside dbt_project/: same database, which already has the period
    second = dbt(
        "build",
        *SELECT,
        artifacts=None,
        target=tmp_path / "t2",
        cwd=repo / "dbt_project",
        project_args=("--profiles-dir", "../profiles"),
    )
    assert duckdb_files(repo) == DATABASES
    assert "quality_by_country: 0 period(s) to process" in second.output
    assert query(artifacts, "select distinct loaded_at from quality_by_country") == [(loaded_at,)]
    assert (artifacts / "marts/quality_by_country").is_dir()
    assert not (repo / "dbt_project/artifacts").exists()

    # 3. every path a view holds is absolute: the files answer from any directory
    views = [
        row
        for database in DATABASES
        for row in duckdb.connect(str(repo / database), read_only=True)
        .execute("select sql from duckdb_views() where not internal")
        .fetchall()
    ]
    paths = [p for (sql,) in views for p in re.findall(r"'(/[^']*\.parquet)'", sql)]
    assert paths and all(Path(p).is_absolute() and ".." not in Path(p).parts for p in paths)
    assert not [sql for (sql,) in views if "'../" in sql or "'profiles/" in sql]
    for cwd, args in ((repo, None), (repo / "dbt_project", ("--profiles-dir", "../profiles"))):
        docs = dbt(
            "docs", "generate", artifacts=None, target=tmp_path / "docs", cwd=cwd, project_args=args
        )
        assert docs.returncode == 0
        assert "model.iqb.quality_by_country" in (tmp_path / "docs/catalog.json").read_text()


def test_a_root_with_quotes_braces_and_spaces_works(tmp_path: Path) -> None:
    artifacts = tmp_path / "it's {a} b" / "artifacts"
    copy_real_october(artifacts)
    dbt("build", *SELECT, artifacts=artifacts, target=tmp_path / "t")
    assert query(artifacts, "select count(*) from iqb_scores_by_country")[0][0] == 237
    assert list(artifacts.glob("marts/quality_by_country/*/data_0.parquet"))


def test_iqb_artifacts_points_at_a_separate_database(tmp_path: Path, real_october: Built) -> None:
    a, b = real_october.artifacts, tmp_path / "b"
    copy_real_october(b, datasets=("downloads_by_country",))  # uploads: no file yet
    before = (
        (a / "iqb.duckdb").stat().st_mtime_ns,
        query(a, "select count(*), count(upload_sample_count) from quality_by_country"),
    )

    run_b = dbt("build", *SELECT, artifacts=b, target=tmp_path / "tb")

    assert (b / "iqb.duckdb").is_file() and (b / "marts/quality_by_country").is_dir()
    assert (
        (a / "iqb.duckdb").stat().st_mtime_ns,
        query(a, "select count(*), count(upload_sample_count) from quality_by_country"),
    ) == before
    assert before[1][0][1] > 200  # a: uploads present
    # b: the missing dataset did not break the build; its side is NULL everywhere
    assert "no readable entry of uploads_by_country" in run_b.output
    [(rows, with_uploads, meeting, scored)] = query(
        b,
        "select count(*), count(upload_sample_count), count(*) filter (where meets_min_samples),"
        " (select count(iqb_score) from iqb_scores_by_country) from quality_by_country",
    )
    assert rows > 200 and with_uploads == 0 and meeting == 0 and scored == 0
    assert not (REPO / "dbt_project" / "artifacts").exists()


def test_a_relative_iqb_artifacts_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    """As for the extractor: IQB_ARTIFACTS=rel from the repo root means <repo>/rel."""
    repo = repo_copy(tmp_path)
    copy_real_october(repo / "elsewhere")
    dbt(
        "build",
        "--select",
        "+quality_by_country",
        artifacts=Path("elsewhere"),
        target=tmp_path / "t",
        cwd=repo,
    )
    assert duckdb_files(repo) == [
        Path("elsewhere/iqb.duckdb"),
        Path("elsewhere/state/dbt/iqb.duckdb"),
    ]
    assert query(repo / "elsewhere", "select count(*) from quality_by_country")[0][0] > 200


@pytest.mark.parametrize(
    ("where", "variable"),
    [("root", None), ("dbt_project", None), ("root", "absolute"), ("dbt_project", "relative")],
)
def test_dbt_opens_the_database_extract_paths_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, variable: str | None
) -> None:
    """The profile's path, and every path the plugin hands to the macros, are
    ArtifactPaths(root).database etc., for the root Python resolves the same way."""
    repo = repo_copy(tmp_path)
    cwd, args = (
        (repo, None)
        if where == "root"
        else (repo / "dbt_project", ("--profiles-dir", "../profiles"))
    )
    value = {None: None, "absolute": tmp_path / "elsewhere", "relative": Path("rel")}[variable]
    monkeypatch.chdir(cwd)
    if value is None:
        root = checkout_artifacts(repo)  # the copy's, as the real profile's is the checkout's
    else:
        monkeypatch.setenv(ENV_ARTIFACTS, str(value))
        root = default_artifacts()  # what the CLI and the extractor use
    root.mkdir(parents=True)

    run = dbt(
        "run-operation",
        "iqb_paths",
        artifacts=value,
        target=tmp_path / "t",
        cwd=cwd,
        project_args=args,
    )

    [line] = [ln for ln in run.output.splitlines() if ln.startswith("{")]
    seen = json.loads(line)
    expected = ArtifactPaths(root)
    assert Path(os.path.abspath(cwd / seen.pop("target_path"))) == expected.working_database
    assert seen.pop("cache_period_regex") == PERIOD_SQL_RE
    assert seen == expected.as_dict()
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*.duckdb")] == [
        expected.working_database.relative_to(tmp_path)
    ]
