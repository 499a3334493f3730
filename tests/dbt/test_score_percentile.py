"""dbt var iqb_percentile: the scores at another percentile (upstream's notebook uses 50)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from extract.datasets import PERCENTILES
from extract.results.html.build import write_html_report
from tests.dbt.conftest import Built
from tests.dbt.helpers import copy_real_october, dbt, query
from tests.dbt.test_real_october import iqb_reference, real_rows
from tests.report.helpers import read_data_script

pytestmark = pytest.mark.slow


def test_percentile_50_scores_the_medians_and_says_so(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    copy_real_october(root)
    dbt("build", "--vars", "{iqb_percentile: 50}", artifacts=root, target=tmp_path / "target")
    assert query(root, "select distinct score_percentile from iqb_scores_by_country") == [(50,)]
    downloads, uploads = real_rows("downloads_by_country"), real_rows("uploads_by_country")
    rows = query(
        root,
        "select country_code, download_p50, upload_p50, latency_p50, loss_p50, "
        "gaming_score, iqb_score from iqb_scores_by_country "
        "where iqb_score is not null",
    )
    assert len(rows) > 200
    changed = 0
    for cc, d50, u50, l50, s50, gaming, score in rows:
        assert (d50, l50, s50) == (
            downloads[cc]["download_p50"],
            downloads[cc]["latency_p50"],
            downloads[cc]["loss_p50"],
        )
        assert u50 == uploads[cc]["upload_p50"]
        use_cases, expected = iqb_reference(
            {"download": d50, "upload": u50, "latency": l50, "loss": s50}
        )
        assert score == pytest.approx(expected) and gaming == pytest.approx(use_cases["gaming"])
        _, p95_score = iqb_reference(
            {
                "download": downloads[cc]["download_p95"],
                "upload": uploads[cc]["upload_p95"],
                "latency": downloads[cc]["latency_p95"],
                "loss": downloads[cc]["loss_p95"],
            }
        )
        changed += p95_score != pytest.approx(expected)
    assert changed > 50  # the medians give other scores than p95 for many countries
    # the report says which percentile, and carries the p50 values its breakdown compares
    _, summary = read_data_script(
        write_html_report(root, tmp_path / "r").directory / "data/summary.js"
    )
    # every percentile's values: the page rescores at any (tests/report/test_page_explore.py)
    assert summary["score_percentile"] == 50
    assert summary["percentiles"] == [1, 5, 10, 25, 50, 75, 90, 95, 99]


def test_a_percentile_the_marts_lack_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    copy_real_october(root)
    run = dbt(
        "build",
        "--select",
        "iqb_scores_by_country",
        "--vars",
        "{iqb_percentile: 42}",
        artifacts=root,
        target=tmp_path / "target",
        check=False,
    )
    assert run.returncode != 0
    assert "var iqb_percentile must be one of 1, 5, 10, 25, 50, 75, 90, 95, 99" in run.output
    assert "not 42" in run.output


# The place keys of each score view (its unique keys, after the period).
LEVEL_KEYS = {
    "country": ["country_code"],
    "country_asn": ["country_code", "asn"],
    "subdivision1": ["country_code", "subdivision1_iso_code", "subdivision1_name"],
    "subdivision1_asn": ["country_code", "subdivision1_iso_code", "subdivision1_name", "asn"],
    "city": ["country_code", "subdivision1_iso_code", "subdivision1_name", "city"],
    "city_asn": ["country_code", "subdivision1_iso_code", "subdivision1_name", "city", "asn"],
}
PX = ("download", "upload", "latency", "loss")


def dict_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def all_percentiles_at(con: duckdb.DuckDBPyConnection, level: str, percentile: int) -> list[dict]:
    """The all-percentiles view at one percentile, in its score view's columns: the
    values compared are download_px ..., named download_pP by the score view
    (which at 95 has only the p95 columns, already there)."""
    order = ", ".join(["period_start", "period_end", *LEVEL_KEYS[level]])
    rows = dict_rows(
        con,
        f"select * from iqb_scores_all_percentiles_by_{level} "
        f"where score_percentile = {percentile} order by {order}",
    )
    for row in rows:
        for metric in PX:
            value = row.pop(f"{metric}_px")
            if percentile != 95:
                row[f"{metric}_p{percentile}"] = value
            else:
                assert value == row[f"{metric}_p95"] or value is None
    return rows


def score_view(con: duckdb.DuckDBPyConnection, level: str, sql: str | None = None) -> list[dict]:
    order = ", ".join(["period_start", "period_end", *LEVEL_KEYS[level]])
    source = f"({sql})" if sql else f"iqb_scores_by_{level}"
    return dict_rows(con, f"select * from {source} as s order by {order}")


def assert_same(expected: list[dict], actual: list[dict], what: str) -> None:
    """Equal row for row, column for column, float for float (== on doubles is bitwise
    equality here: the scores hold no NaN, and NULL is None)."""
    assert len(actual) == len(expected), what
    for e, a in zip(expected, actual, strict=True):
        assert a == e, f"{what}: {a} != {e}"


@pytest.mark.parametrize("percentile", [50, 95])
def test_every_percentile_view_equals_a_build_at_that_percentile(
    real_october: Built, tmp_path: Path, percentile: int
) -> None:
    """`where score_percentile = P` on the default build gives, bit for bit, the score
    views of a build with --vars '{iqb_percentile: P}' (the real October 2024 data)."""
    if percentile == 95:
        at_p = real_october.artifacts  # the default build is the build at 95
    else:
        at_p = tmp_path / "artifacts"
        copy_real_october(at_p)
        dbt(
            "build",
            "--vars",
            f"{{iqb_percentile: {percentile}}}",
            artifacts=at_p,
            target=tmp_path / "target",
        )
    with (
        duckdb.connect(str(real_october.artifacts / "iqb.duckdb"), read_only=True) as default,
        duckdb.connect(str(at_p / "iqb.duckdb"), read_only=True) as build,
    ):
        for level in LEVEL_KEYS:
            expected = score_view(build, level)
            assert all(r["score_percentile"] == percentile for r in expected)
            actual = all_percentiles_at(default, level, percentile)
            assert_same(expected, actual, f"{level} at p{percentile}")
        scored = default.execute(
            "select count(iqb_score) from iqb_scores_all_percentiles_by_country "
            f"where score_percentile = {percentile}"
        ).fetchone()
        assert scored is not None and scored[0] > 200


def test_all_nine_percentiles_equal_the_score_sql_compiled_at_each(
    real_october: Built, tmp_path: Path
) -> None:
    """All nine: the score view's SQL as dbt compiles it at P (what a build at P would
    publish), run on the published database, equals the all-percentiles view at P; and
    the nine differ (each reads its own pX)."""
    means = {}
    for percentile in PERCENTILES:
        target = tmp_path / f"p{percentile}"
        dbt(
            "compile",
            "--select",
            "iqb_scores_by_country",
            "--vars",
            f"{{iqb_percentile: {percentile}}}",
            artifacts=real_october.artifacts,
            target=target,
        )
        [compiled] = target.glob("compiled/iqb/models/marts/scores/iqb_scores_by_country.sql")
        sql = compiled.read_text().replace('."audit".', '."main".')
        with duckdb.connect(str(real_october.artifacts / "iqb.duckdb"), read_only=True) as con:
            expected = score_view(con, "country", sql)
            actual = all_percentiles_at(con, "country", percentile)
        assert_same(expected, actual, f"country at p{percentile}")
        scores = [r["iqb_score"] for r in actual if r["iqb_score"] is not None]
        means[percentile] = sum(scores) / len(scores)
    assert list(means.values()) == sorted(means.values())  # a higher pX passes more
    assert len(set(means.values())) == len(PERCENTILES)


def test_a_non_integer_percentile_is_refused_not_rounded(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    copy_real_october(root)
    run = dbt(
        "build",
        "--select",
        "iqb_scores_by_country",
        "--vars",
        "{iqb_percentile: 95.5}",
        artifacts=root,
        target=tmp_path / "target",
        check=False,
    )
    assert run.returncode != 0
    assert "var iqb_percentile must be one of 1, 5, 10, 25, 50, 75, 90, 95, 99" in run.output
    assert "not 95.5" in run.output
    assert not (root / "iqb.duckdb").exists() or not query(
        root, "select 1 from information_schema.tables where table_name = 'iqb_scores_by_country'"
    )
