"""The marts' enforced contracts: the columns in a mart's YAML are what its SQL must give.

A column renamed or retyped in the SQL of a quality mart (materialization
audited_periods, checked by the pre-hook assert_mart_contract) or of a score
view (dbt's view materialization), or retyped in the YAML alone, fails
`dbt build` with dbt's contract error before the model is written; the build
then publishes nothing. Real builds on a copy of the project over M-Lab's real
October 2024 country files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from extract.sync.manifest import publishable_files
from tests.dbt.helpers import copy_real_october, dbt, query, repo_copy

pytestmark = pytest.mark.slow

CONTRACT_ERROR = "This model has an enforced contract that failed."
QUALITY = "dbt_project/models/marts/quality/quality_by_country"  # .sql, .yml
SCORES = "dbt_project/models/marts/scores/iqb_scores_by_country"


def published_state(root: Path) -> tuple:
    """What users see: the published files, `main`'s view definitions, and rows through them."""
    files = {
        key: hashlib.sha256(path.read_bytes()).hexdigest()
        for key, path in publishable_files(root).items()
        if key.startswith("marts/")
    }
    return (
        files,
        query(
            root,
            "select view_name, sql from duckdb_views() where database_name = current_database() "
            "and schema_name = 'main' order by 1",
        ),
        query(
            root,
            "select count(*), sum(download_sample_count), sum(download_p95) "
            "from quality_by_country",
        ),
        query(root, "select count(iqb_score), sum(iqb_score) from iqb_scores_by_country"),
    )


def mismatches(output: str) -> set[tuple[str, ...]]:
    """The rows of dbt's contract error table: (column, SQL type, contract type, reason)."""
    rows: set[tuple[str, ...]] = set()
    for line in output.splitlines():
        cells = tuple(c.strip() for c in line.strip().strip("|").split("|"))
        if line.strip().startswith("|") and len(cells) == 4 and not set(cells[0]) <= {"-"}:
            rows.add(cells)
    return rows - {("column_name", "definition_type", "contract_type", "mismatch_reason")}


def wrap(select: str) -> Callable[[str], str]:
    """An edit of a model's SQL: the SQL put under `select`."""
    return lambda sql: f"{select} from (\n{sql}\n) as model\n"


def retype(column: str, old: str, new: str) -> Callable[[str], str]:
    """An edit of a model's YAML: one column's declared data_type changed."""

    def edit(text: str) -> str:
        at = text.index(f"data_type: {old}", text.index(f"- name: {column}\n"))
        return text[:at] + f"data_type: {new}" + text[at + len(f"data_type: {old}") :]

    return edit


@pytest.mark.parametrize(
    ("path", "edit", "mismatch"),
    [
        # a quality mart's SQL: a column retyped (BIGINT in the YAML); the
        # pre-hook checks it on every build
        (
            f"{QUALITY}.sql",
            wrap("select * replace (download_sample_count::integer as download_sample_count)"),
            {("download_sample_count", "INTEGER", "BIGINT", "data type mismatch")},
        ),
        # a score view's SQL: a column renamed
        (
            f"{SCORES}.sql",
            wrap("select * rename (iqb_score as score)"),
            {
                ("iqb_score", "", "DOUBLE", "missing in definition"),
                ("score", "DOUBLE", "", "missing in contract"),
            },
        ),
        # a score view's YAML alone: its SQL is unchanged, yet the view is
        # rebuilt (the column types are part of its fingerprint) and checked
        (
            f"{SCORES}.yml",
            retype("iqb_score", "double", "float"),
            {("iqb_score", "DOUBLE", "FLOAT", "data type mismatch")},
        ),
    ],
    ids=["quality_mart_sql_retyped", "score_view_sql_renamed", "score_view_yaml_retyped"],
)
def test_a_broken_contract_fails_the_build_and_publishes_nothing(
    tmp_path: Path, path: str, edit: Callable[[str], str], mismatch: set[tuple[str, ...]]
) -> None:
    repo = repo_copy(tmp_path)
    root = repo / "artifacts"
    copy_real_october(root)
    dbt("build", artifacts=None, target=tmp_path / "t0", cwd=repo)
    before = published_state(root)
    builds = sorted(root.glob("marts/.builds/*"))
    assert before[2][0][0] == 237 and len(before[0]) == 1

    (repo / path).write_text(edit((repo / path).read_text()))
    run = dbt("build", artifacts=None, target=tmp_path / "t1", cwd=repo, check=False)

    assert run.returncode != 0, run.output
    name = Path(path).stem
    statuses = run.statuses()
    assert statuses[f"model.iqb.{name}"] == "error"
    assert CONTRACT_ERROR in run.output, run.output
    assert mismatches(run.output) == mismatch, run.output
    if name == "quality_by_country":  # and what reads it was not built on it
        assert statuses["model.iqb.iqb_scores_by_country"] == "skipped"
    assert "iqb: NOTHING PUBLISHED" in run.output
    assert published_state(root) == before
    # nothing this build wrote is left either
    assert sorted(root.glob("marts/.builds/*")) == builds and not list(root.glob("state/publish/*"))
