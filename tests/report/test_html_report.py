"""`iqb report --html`: what the report folder holds, checked against the database."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from extract.results import api
from extract.results.html.build import write_html_report
from extract.sync.manifest import key_problem, publishable_files
from extract.sync.snapshot import materialise_published
from tests.dbt.helpers import dbt
from tests.report.conftest import run_iqb
from tests.report.helpers import read_data_script, rows

pytestmark = pytest.mark.slow

UNREAD = ("subdivision1_asn", "city_asn")  # levels the report has no view of
PCTS = (1, 5, 10, 25, 50, 75, 90, 95, 99)


@pytest.fixture(scope="module")
def demo_report(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_report") / "report"
    proc = run_iqb("report", "--html", str(out), artifacts=demo_db)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out / 'index.html'}" in proc.stdout
    return out


def db(root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(root / "iqb.duckdb"), read_only=True)


def test_folder_is_self_contained(demo_report: Path) -> None:
    names = {p.relative_to(demo_report).as_posix() for p in demo_report.rglob("*") if p.is_file()}
    assert {
        "index.html",
        "assets/echarts.min.js",
        "assets/topojson-client.min.js",
        "assets/world-110m.js",
        "assets/admin1.js",
        "assets/loader.js",
        "assets/report.js",
        "assets/report.css",
        "data/summary.js",
        "data/drill-2024-09-01.js",
        "data/drill-2024-10-01.js",
    } == names
    html = (demo_report / "index.html").read_text()
    # no inline script: the page names its loader, beside it and at its bucket address
    loader = hashlib.sha256((demo_report / "assets/loader.js").read_bytes()).hexdigest()
    assert re.findall(r'<script[^>]*src="([^"]+)"', html) == [
        "assets/loader.js",
        f"../assets/{loader}/loader.js",
    ]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline script
    csp = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', html)
    assert csp is not None, "no Content-Security-Policy"
    policy = csp[1]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert not re.search(
        r'(?:src|href)="(?!assets/loader\.js"|\.\./assets/[0-9a-f]{64}/loader\.js")[^"#]', html
    )
    # the loader alone names the other files, every one a relative path inside the folder
    code = (demo_report / "assets/loader.js").read_text()
    refs = re.findall(r"'((?:assets|data)/[^']+)'", code)
    assert len(refs) == 6 and all((demo_report / r).is_file() for r in refs), refs
    # and it knows each file's SHA-256: its address when opened from the bucket
    listed = re.search(r"window\.IQB_FILES = (\{.*?\});", code)
    assert listed is not None, "the loader lists no IQB_FILES"
    files = json.loads(listed[1])
    assert files == {
        name: hashlib.sha256((demo_report / name).read_bytes()).hexdigest()
        for name in names - {"index.html", "assets/loader.js"}
    }
    for name in ("report.js", "report.css"):
        text = (demo_report / "assets" / name).read_text()
        assert not re.search(r"https?://", text), f"{name} names a URL"
    # the map geometry is Natural Earth's, with ISO alpha-2 codes added for the join
    world = (demo_report / "assets/world-110m.js").read_text()
    assert world.startswith("window.IQB_WORLD = ")
    for cc in ('"cc":"ZA"', '"cc":"BR"', '"cc":"XK"'):
        assert cc in world


def test_summary_holds_the_database_values(demo_db: Path, demo_report: Path) -> None:
    """Every value at every percentile, exact (the page scores them), with the flags."""
    _, summary = read_data_script(demo_report / "data/summary.js")
    metrics = [f"{m}_p{p}" for m in ("download", "upload", "latency", "loss") for p in PCTS]
    with db(demo_db) as con:
        expected = con.execute(
            "select country_code, download_sample_count, upload_sample_count, meets_min_samples, "
            "is_known_country, has_invalid_values, " + ", ".join(metrics) + " "
            "from quality_by_country where period_start = '2024-10-01'"
        ).fetchall()
    assert [p["start"] for p in summary["periods"]] == ["2024-09-01", "2024-10-01"]
    got = {r["country_code"]: r for r in rows(summary["countries"]) if r["period"] == 1}
    assert len(got) == len(expected) > 200
    for cc, n_down, n_up, meets, known, invalid, *values in expected:
        r = got[cc]
        assert (r["download_sample_count"], r["upload_sample_count"]) == (n_down, n_up)
        assert (r["meets_min_samples"], r["is_known_country"], r["has_invalid_values"]) == (
            meets,
            known,
            invalid,
        )
        assert [r[c] for c in metrics] == values  # exact, not rounded
    thin = [cc for cc, _, _, meets, *_ in expected if not meets]
    assert thin, "the demo sample should leave some countries with too few tests"
    assert summary["score_percentile"] == 95 and summary["percentiles"] == list(PCTS)
    assert {(r["use_case"], r["requirement"]) for r in summary["requirements"]} >= {
        ("gaming", "latency_ms"),
        ("web_browsing", "packet_loss"),
    }
    assert all(p["min_sample_count"] == 100 for p in summary["periods"])


def test_demo_periods_say_synthetic_real_october_says_real(
    demo_report: Path, real_db: Path, tmp_path: Path
) -> None:
    _, demo = read_data_script(demo_report / "data/summary.js")
    assert all(p["synthetic"] for p in demo["periods"])
    assert "source: synthetic" in demo["periods"][0]["evidence"]
    rep = write_html_report(real_db, tmp_path / "real")
    _, real = read_data_script(rep.directory / "data/summary.js")
    assert [(p["label"], p["synthetic"]) for p in real["periods"]] == [("2024-10", False)]
    za = next(r for r in rows(real["countries"]) if r["country_code"] == "ZA")
    # M-Lab's real October 2024 figure for South Africa (the cache file)
    assert za["download_sample_count"] > 100_000 and za["meets_min_samples"]
    assert rep.countries > 230


def test_drill_down_keeps_the_biggest_places_and_counts_all(
    demo_db: Path, demo_report: Path
) -> None:
    key, drill = read_data_script(demo_report / "data/drill-2024-10-01.js")
    assert key == "2024-10-01" and drill["limit"] == 50
    with db(demo_db) as con:
        for level in ("subdivision1", "city", "country_asn"):
            per_country = dict(
                con.execute(
                    f"select country_code, count(*) from quality_by_{level} "
                    "where period_start = '2024-10-01' group by all"
                ).fetchall()
            )
            data = drill["levels"][level]
            assert data["totals"] == per_country
            got = rows(data)
            for cc, n in per_country.items():
                assert sum(r["country_code"] == cc for r in got) == min(n, 50)
        top = con.execute(
            "select subdivision1_name, download_sample_count, upload_sample_count "
            "from quality_by_subdivision1 where period_start = '2024-10-01' "
            "and country_code = 'ZA' order by download_sample_count + upload_sample_count desc "
            "limit 1"
        ).fetchone()
    za = [r for r in rows(drill["levels"]["subdivision1"]) if r["country_code"] == "ZA"]
    assert (za[0]["label"], za[0]["download_sample_count"], za[0]["upload_sample_count"]) == top


def test_report_is_rewritten_without_stale_files(demo_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    write_html_report(demo_db, out)
    (out / "data" / "drill-1999-01-01.js").write_text("old")
    write_html_report(demo_db, out)
    assert not (out / "data" / "drill-1999-01-01.js").exists()


def test_never_clears_a_folder_that_is_not_a_report(demo_db: Path, tmp_path: Path) -> None:
    other = tmp_path / "thesis"
    (other / "data").mkdir(parents=True)
    (other / "data" / "chapter1.tex").write_text("keep me")
    proc = run_iqb("report", "--html", str(other), artifacts=demo_db)
    assert proc.returncode == 1 and "holds no earlier IQB report" in proc.stderr
    assert (other / "data" / "chapter1.tex").read_text() == "keep me"


def test_sync_publishes_the_report(demo_db: Path, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    shutil.copyfile(demo_db / "iqb.duckdb", root / "iqb.duckdb")
    write_html_report(demo_db, root / "report")
    keys = set(publishable_files(root))
    assert {"report/index.html", "report/assets/echarts.min.js", "report/data/summary.js"} <= keys
    assert key_problem("report/../iqb.duckdb") is not None
    assert key_problem("report/assets/x.exe") is not None


def test_reads_only_the_relations_it_names_and_no_local_path(
    demo_db: Path, demo_report: Path, tmp_path: Path
) -> None:
    # a snapshot of the demo database (every relation a table) without the relations
    # the report says it does not read: the report is still made, from the others
    root = tmp_path / "artifacts"
    root.mkdir()
    materialise_published(demo_db / "iqb.duckdb", root / "iqb.duckdb")
    unread = [f"{kind}_by_{level}" for kind in ("quality", "iqb_scores") for level in UNREAD]
    with duckdb.connect(str(root / "iqb.duckdb")) as con:
        for name in unread:
            con.execute(f"drop table {name}")
    _, summary = read_data_script(write_html_report(root).directory / "data/summary.js")
    assert set(summary["relations"]).isdisjoint(unread)
    assert {"quality_by_country", "iqb_scores_by_country_asn"} <= set(summary["relations"])
    # the folder is published: it names the database file, not where it was on this machine
    assert summary["database"] == "iqb.duckdb"
    for path in demo_report.rglob("*"):
        if path.is_file():
            assert str(demo_db) not in path.read_text(errors="replace"), path


def test_two_periods_with_one_start_stay_apart(demo_db: Path, tmp_path: Path) -> None:
    # October's first half beside the month: a matrix may hold both
    root = tmp_path / "artifacts"
    root.mkdir()
    materialise_published(demo_db / "iqb.duckdb", root / "iqb.duckdb")
    with duckdb.connect(str(root / "iqb.duckdb")) as con:
        for table in ("quality_by_country", "iqb_scores_by_country"):
            con.execute(
                f"insert into {table} select * replace (date '2024-10-16' as period_end"
                + (", 7 as download_sample_count" if table.startswith("quality") else "")
                + f") from {table} where period_start = '2024-10-01'"
            )
        [(october,)] = con.execute(
            "select count(*) from quality_by_country where period_start = '2024-10-01' "
            "and period_end = '2024-11-01'"
        ).fetchall()
    out = write_html_report(root).directory
    _, summary = read_data_script(out / "data/summary.js")
    periods = {p["id"]: p for p in summary["periods"]}
    assert list(periods) == ["2024-09-01", "2024-10-01_2024-10-16", "2024-10-01"]
    assert periods["2024-10-01"]["countries"] == october  # not twice as many
    assert periods["2024-10-01_2024-10-16"]["countries"] == october
    half = list(periods).index("2024-10-01_2024-10-16")
    counts = {r["download_sample_count"] for r in rows(summary["countries"]) if r["period"] == half}
    assert counts == {7}
    for period_id in periods:
        key, _ = read_data_script(out / summary["drill_files"][period_id])
        assert key == period_id
    # the API: a start alone is refused, naming both; START..END names one
    for period in ("2024-10", "latest"):
        with pytest.raises(api.ApiError, match=r"starts 2 periods.*'2024-10-01\.\.2024-10-16'"):
            api.scores("country", period=period, artifacts=root)
    half_rows = api.quality("country", period="2024-10-01..2024-10-16", artifacts=root)
    assert len(half_rows) == october and set(half_rows.download_sample_count) == {7}
    assert len(api.quality("country", period="2024-09", artifacts=root)) > 200


def test_clear_errors_without_database_or_marts(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_iqb("report", "--html", artifacts=empty)
    assert proc.returncode == 1
    assert "no database at" in proc.stderr and "dbt build" in proc.stderr
    assert "Traceback" not in proc.stderr
    duckdb.connect(str(empty / "iqb.duckdb")).close()  # a database without marts
    proc = run_iqb("report", "--html", artifacts=empty)
    assert proc.returncode == 1 and "lacks quality_by_country" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_copied_or_damaged_database_is_one_clear_error(demo_db: Path, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    shutil.copytree(demo_db, root)
    target = tmp_path / "target"

    # a copy's views still read the original folder's files: refused, not read
    proc = run_iqb("report", artifacts=root)
    assert proc.returncode == 1, proc.stdout
    assert "was built in another folder" in proc.stderr and "Traceback" not in proc.stderr
    assert str((demo_db / "marts").resolve()) in proc.stderr.replace("\n", "")
    with pytest.raises(api.ApiError, match="built in another folder"):
        api.scores("country", artifacts=root)
    # what the message says to run points it at its own folder
    assert dbt("build", artifacts=root, target=target).returncode == 0
    assert run_iqb("report", artifacts=root).returncode == 0

    # a published file damaged since: one message naming it, for the CLI and the API
    victim = sorted((root / "marts" / "quality_by_country").glob("*/data_0.parquet"))[-1]
    victim.write_bytes(victim.read_bytes()[:1000])
    for args in (["report"], ["report", "--html"]):
        proc = run_iqb(*args, artifacts=root)
        assert proc.returncode == 1, proc.stdout
        assert "Traceback" not in proc.stderr
        assert "cannot be read" in proc.stderr and victim.name in proc.stderr
    with pytest.raises(api.ApiError, match=r"cannot be read.*dbt build"):
        api.scores("country", artifacts=root)
    # a file of the caller's own SQL is not a mart: DuckDB's error, as it is
    with pytest.raises(duckdb.IOException, match=r"no-such\.parquet"):
        api.sql("select * from read_parquet('/nonexistent/no-such.parquet')", artifacts=root)
    assert dbt("build", artifacts=root, target=target).returncode == 0
    assert run_iqb("report", artifacts=root).returncode == 0
