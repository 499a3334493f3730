"""A new use case is rows of the seeds and one command, `scripts/generate.py`.

The use cases' one home is the seed iqb_use_cases.csv: generate.py derives from
it the macro listing them and the score columns of every score view's contract.
On a copy of the project, a new use case is added to the seeds alone; a build
without generate.py stops on the seed's test (it would otherwise score the old
use cases and ignore the new row) and publishes nothing; after generate.py a
real `dbt build` over M-Lab's real October 2024 country files publishes its
score, in [0, 1], in every score view.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.dbt.helpers import copy_real_october, dbt, query, repo_copy

pytestmark = pytest.mark.slow

USE_CASE = "remote_desktop"
REQUIREMENTS = [  # requirement, weight, threshold: a plausible remote-desktop profile
    ("download_throughput_mbps", 2, 10),
    ("upload_throughput_mbps", 2, 5),
    ("latency_ms", 4, 50),
    ("packet_loss", 3, 0.01),
]
LEVELS = ("country", "country_asn", "subdivision1", "subdivision1_asn", "city", "city_asn")


def add_use_case(project: Path) -> None:
    """The seed rows a user writes: the use case's weight and its requirements."""
    with open(project / "seeds/iqb_use_cases.csv", "a") as fh:
        fh.write(f"{USE_CASE},1\n")
    with open(project / "seeds/iqb_requirements.csv", "a") as fh:
        fh.writelines(f"{USE_CASE},{r},{w},{t}\n" for r, w, t in REQUIREMENTS)


def generate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(project / "scripts/generate.py"), *args],
        capture_output=True,
        text=True,
    )


def test_a_new_use_case_is_seed_rows_and_generate(tmp_path: Path) -> None:
    repo = repo_copy(tmp_path)
    project = repo / "dbt_project"
    root = repo / "artifacts"
    copy_real_october(root)
    add_use_case(project)

    # The seed alone: generate.py --check names the stale contracts, and the
    # build stops, naming the new use case and the command, publishing nothing.
    check = generate(project, "--check")
    assert check.returncode == 1
    assert "stale: dbt_project/models/marts/scores/iqb_scores_by_country.yml" in check.stdout
    run = dbt("build", artifacts=None, target=tmp_path / "t0", cwd=repo, check=False)
    assert run.returncode != 0
    assert (
        f"new in the seed: {USE_CASE}; gone from it: none): run dbt_project/scripts/generate.py"
        in run.output
    ), run.output
    assert run.statuses()["model.iqb.iqb_scores_by_country"] == "skipped"
    assert "iqb: NOTHING PUBLISHED" in run.output

    # The one command, then the build users run.
    assert generate(project).returncode == 0
    assert generate(project, "--check").returncode == 0
    dbt("build", artifacts=None, target=tmp_path / "t1", cwd=repo)

    for view in [f"iqb_scores_by_{level}" for level in LEVELS] + [
        f"iqb_scores_all_percentiles_by_{level}" for level in LEVELS
    ]:
        columns = [
            name
            for (name,) in query(
                root,
                "select column_name from duckdb_columns() where schema_name = 'main' "
                "and table_name = ?",
                [view],
            )
        ]
        assert f"{USE_CASE}_score" in columns, (view, columns)
        assert columns.index(f"{USE_CASE}_score") == columns.index("iqb_score") - 1, columns

    # Its description, generated with a reference to the docs block every score shares,
    # is rendered where researchers read it: the column's comment in main.
    [(comment,)] = query(
        root,
        "select comment from duckdb_columns() where schema_name = 'main' "
        "and table_name = 'iqb_scores_by_country' and column_name = ?",
        [f"{USE_CASE}_score"],
    )
    assert comment.startswith(
        "Use-case score of remote desktop: the weighted share of the use case's requirements"
    ), comment

    [(scored, low, high, total)] = query(
        root,
        f"select count({USE_CASE}_score), min({USE_CASE}_score), max({USE_CASE}_score), "
        "count(*) from iqb_scores_by_country",
    )
    assert total == 237 and scored > 100, (scored, total)
    assert 0 <= low < high <= 1, (low, high)
    [(at_every_percentile,)] = query(
        root,
        f"select count(distinct score_percentile) from iqb_scores_all_percentiles_by_country "
        f"where {USE_CASE}_score between 0 and 1",
    )
    assert at_every_percentile == 9
    # The IQB score now weighs seven use cases: a country that passes every
    # other use case but not this one scores below 1.
    [(weighted,)] = query(
        root,
        f"select count(*) from iqb_scores_by_country where {USE_CASE}_score is not null "
        f"and abs(iqb_score - ({USE_CASE}_score + web_browsing_score + video_streaming_score "
        "+ audio_streaming_score + video_conferencing_score + online_backup_score "
        "+ gaming_score) / 7) > 1e-12",
    )
    assert weighted == 0
