"""A cache that grows month by month, as in production: what each `dbt build` processes.

The module fixture runs the whole story once on a small synthetic sample (all
six levels, ASN names with `-ALT` variants, NULL cities) and records what it
saw after each step; the tests then check the records:

1. September is extracted, except uploads_by_country_city (no file yet) -> dbt build
2. October lands, with all twelve datasets                             -> dbt build
3.                                                                        dbt test
4.                                                                        dbt build --full-refresh
5. a new minimum sample count for one mart only                         -> refused
6. a new minimum sample count                                           -> dbt build --vars

The README's example queries run on the result.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.dbt.helpers import IQB, DbtRun, dbt, env, query, query_working, shell, unchanged_views

pytestmark = pytest.mark.slow

MARTS = [
    "quality_by_country",
    "quality_by_country_asn",
    "quality_by_subdivision1",
    "quality_by_subdivision1_asn",
    "quality_by_city",
    "quality_by_city_asn",
]
SEP, OCT = "2024-09-01", "2024-10-01"
SEP_UPLOADS_BY_CITY = "cache/v1/20240901T000000Z/20241001T000000Z/uploads_by_country_city"
MATRIX = """\
version: 0
matrix:
  dates:
    - {{start: "{start}", end: "{end}"}}
  granularities: [country, country_asn, subdivision1, subdivision1_asn, city, city_asn]
"""


@dataclass
class Snapshot:
    run: DbtRun
    loaded_at: dict[tuple[str, str], set] = field(default_factory=dict)  # (mart, period) -> {ts}
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 + mtime
    data_tests: dict[str, str] = field(default_factory=dict)  # mart/score test -> SQL run


def build_step(root: Path, target: Path, *args: str) -> Snapshot:
    """Run dbt, then snapshot the marts, the exports and the SQL its data tests ran."""
    shutil.rmtree(target / "run", ignore_errors=True)
    return snapshot(root, dbt(*args, artifacts=root, target=target), target)


def snapshot(root: Path, run: DbtRun, target: Path) -> Snapshot:
    snap = Snapshot(run)
    # the SQL of each data test of models/marts/ (target/run/iqb/models/marts/*/<model>.yml/)
    for f in (target / "run" / "iqb" / "models" / "marts").glob("*/*.yml/*.sql"):
        snap.data_tests[f"{f.parent.name}/{f.stem}"] = f.read_text()
    for mart in MARTS:
        for period, n, stamps in query(
            root,
            f"select cast(period_start as varchar), count(*), "
            f"list(distinct loaded_at) from {mart} group by 1",
        ):
            snap.rows[mart, period] = n
            snap.loaded_at[mart, period] = set(stamps)
    for f in sorted((root / "marts").glob("*/period=*/*.parquet")):  # the public names
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        snap.exports[str(f.relative_to(root / "marts"))] = f"{digest} {f.stat().st_mtime_ns}"
    return snap


def iqb(root: Path, *args: str) -> None:
    subprocess.run(
        [str(IQB), *args],
        env=env(root),
        cwd=root.parent,
        check=True,
        capture_output=True,
        timeout=300,
    )


def extract(root: Path, start: str, end: str) -> None:
    config = root.parent / f"matrix-{start}.yaml"
    config.write_text(MATRIX.format(start=start, end=end))
    iqb(root, "extract", "run", "--config", str(config))


def periods_processed(run: DbtRun, mart: str) -> list[str]:
    m = re.search(rf"{mart}: (\d+) period\(s\) to process \[(.*?)\]", run.output)
    assert m, run.output
    return re.findall(r"'([^']+)'", m[2])


@dataclass(frozen=True)
class Story:
    """The growing workspace: its artifacts root and a snapshot after each named build step."""

    root: Path
    steps: dict[str, Snapshot]

    def __getitem__(self, step: str) -> Snapshot:
        return self.steps[step]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    base = tmp_path_factory.mktemp("growing")
    root, target = base / "artifacts", base / "target"
    root.mkdir()
    iqb(root, "sample", "--months", "2024-09..2024-10", "--rows", "60000", "--seed", "3")
    extract(root, "2024-09-01", "2024-10-01")
    shutil.rmtree(root / SEP_UPLOADS_BY_CITY)
    steps = {"first": build_step(root, target, "build")}
    extract(root, "2024-10-01", "2024-11-01")
    steps["october"] = build_step(root, target, "build")
    steps["test"] = build_step(root, target, "test")
    steps["full"] = build_step(root, target, "build", "--full-refresh")
    steps["one_mart"] = snapshot(
        root,
        dbt(
            "build",
            "--select",
            "+iqb_scores_by_city",
            "--vars",
            "{min_sample_count: 40}",
            artifacts=root,
            target=target,
            check=False,
        ),
        target,
    )
    steps["vars"] = build_step(root, target, "build", "--vars", "{min_sample_count: 40}")
    return Story(root, steps)


def test_every_build_passes_its_tests(story: Story) -> None:
    for name in ("first", "october", "test", "full"):
        failed = {
            k: v
            for k, v in story[name].run.statuses().items()
            if v not in ("success", "pass") and not k.startswith("exposure.")
        }
        assert not failed, (name, story[name].run.output)


def test_a_dataset_without_files_does_not_break_the_build(story: Story) -> None:
    first = story["first"]
    assert "no readable entry of uploads_by_country_city" in first.run.output
    root = story.root
    [(rows, uploads)] = query(
        root,
        "select count(*), count(upload_sample_count) from quality_by_city where period_start = ?",
        [SEP],
    )
    assert rows > 0 and uploads == 0  # September: downloads only
    [(rows, uploads)] = query(
        root,
        "select count(*), count(upload_sample_count) from quality_by_city where period_start = ?",
        [OCT],
    )
    assert rows > 0 and uploads > 0  # the dataset's first file was picked up


def test_a_new_month_is_the_only_one_processed(story: Story) -> None:
    first, october = story["first"], story["october"]
    for mart in MARTS:
        assert periods_processed(october.run, mart) == ["2024-10-01_2024-11-01"], mart
        # September's rows were not rewritten: same loaded_at, same count
        assert october.loaded_at[mart, SEP] == first.loaded_at[mart, SEP], mart
        assert october.rows[mart, SEP] == first.rows[mart, SEP], mart
        assert october.loaded_at[mart, OCT].isdisjoint(first.loaded_at[mart, SEP])
        assert len(october.loaded_at[mart, OCT]) == 1
    # exports: September's files untouched (bytes and mtime), October's added
    sep_files = {k: v for k, v in first.exports.items() if "period=2024-09-01" in k}
    assert len(sep_files) == len(MARTS)
    assert all(october.exports[k] == v for k, v in sep_files.items())
    assert sum("period=2024-10-01_2024-11-01" in k for k in october.exports) == len(MARTS)


def test_new_cache_files_re_create_the_staging_views(story: Story) -> None:
    """A staging view lists its cache files, so a new month re-creates all twelve;
    the score views, whose SQL and parents are the same, are kept."""
    skipped = unchanged_views(story["october"].run.output)
    assert len(skipped) == 12 and all(v.startswith("main.iqb_scores_") for v in skipped)
    assert not unchanged_views(story["first"].run.output)


def test_an_incremental_build_tests_only_the_new_period(story: Story) -> None:
    """The data tests of the marts and score views filter on the period the build loaded."""
    tests = story["october"].data_tests
    # the all-percentiles views have no data test of their own (docs/dbt.md, "Tests")
    assert len(tests) == 2 * len(MARTS) and {t.split(".yml/")[0] for t in tests} == {
        *MARTS,
        *(m.replace("quality_by_", "iqb_scores_by_") for m in MARTS),
    }
    for name, sql in tests.items():  # dbt's own `where`, a date the plugin folds in
        assert "dbt_subquery" in sql and "iqb_tested_from(" in sql, (name, sql)
    window = (
        "data tests read the periods from 2024-10-01 of the marts "
        "and the periods from 2024-10-01 of the scores"
    )
    assert window in story["october"].run.output


@pytest.mark.parametrize("step", ["first", "test", "full"])
def test_first_build_full_refresh_and_dbt_test_test_every_period(story: Story, step: str) -> None:
    tests = story[step].data_tests
    assert len(tests) == len(story["october"].data_tests)
    output = story[step].run.output
    if step == "test":  # a standalone `dbt test`: the plugin's window is -infinity
        assert "data tests read" not in output
    else:  # every period was written: from the first one on
        assert "data tests read the periods from 2024-09-01 of the marts" in output


def test_full_refresh_rebuilds_every_period(story: Story) -> None:
    october, full = story["october"], story["full"]
    stamps = set().union(*full.loaded_at.values())
    assert len(stamps) == 1 and stamps.isdisjoint(set().union(*october.loaded_at.values()))
    assert full.rows == october.rows
    assert set(full.exports) == set(october.exports)
    assert all(full.exports[k] != october.exports[k] for k in full.exports)  # rewritten


def test_a_new_min_sample_count_reprocesses_every_period(story: Story) -> None:
    full, changed = story["full"], story["vars"]
    for mart in MARTS:
        assert periods_processed(changed.run, mart) == [
            "2024-09-01_2024-10-01",
            "2024-10-01_2024-11-01",
        ], mart
    root = story.root
    [(threshold, meets, wrong)] = query(
        root,
        "select list(distinct min_sample_count), count(*) filter (where meets_min_samples), "
        "count(*) filter (where meets_min_samples <> coalesce(download_sample_count >= 40 "
        "and upload_sample_count >= 40, false)) from quality_by_city",
    )
    assert threshold == [40] and meets > 0 and wrong == 0
    for mart in MARTS:  # one threshold per database
        assert query(root, f"select distinct min_sample_count from {mart}") == [(40,)], mart
    for period in (SEP, OCT):
        assert (
            changed.loaded_at["quality_by_city", period]
            != full.loaded_at["quality_by_city", period]
        )


def test_a_threshold_for_some_marts_only_is_refused(story: Story) -> None:
    """`--select` with another min_sample_count would mix thresholds: nothing is published."""
    run, full = story["one_mart"].run, story["full"]
    assert run.returncode != 0
    assert "min_sample_count 40" in run.output and "quality_by_country (100)" in run.output
    assert story["one_mart"].loaded_at == full.loaded_at  # users still see the full build
    assert story["one_mart"].exports == full.exports


def test_asn_marts_have_one_row_per_asn_although_names_vary(story: Story) -> None:
    root = story.root
    [(rows, asns, multi)] = query(
        root,
        "select count(*), count(distinct (period_start, country_code, asn)), "
        "count(*) filter (where as_name_count > 1) from quality_by_country_asn",
    )
    assert rows == asns and multi > 0
    # the kept name is the one with the most download tests
    [(bad,)] = query_working(  # the staging views are dbt's, in its working database
        root,
        """
        select count(*) from quality_by_country_asn as q
        where q.download_sample_count < (
            select max(sample_count) from staging.stg_downloads_by_country_asn as s
            where s.period_start = q.period_start and s.country_code = q.country_code
              and s.asn = q.asn)""",
    )
    assert bad == 0


def readme_queries() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Transform: dbt and the duckdb shell", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def test_the_readme_has_five_example_queries() -> None:
    assert len(readme_queries()) == 5


@pytest.mark.parametrize("number", range(1, 6))
def test_readme_query_runs_in_the_duckdb_shell(story: Story, number: int, tmp_path: Path) -> None:
    sql = readme_queries()[number - 1]
    proc = shell(story.root / "iqb.duckdb", sql, "-csv", "-bail", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) >= 2, (sql, proc.stdout)  # a header and at least one row


def test_synthetic_periods_say_so_in_the_marts_and_the_report(story: Story) -> None:
    root = story.root
    for mart in MARTS:
        assert query(root, f"select distinct is_synthetic, source_kind from {mart}") == [
            (True, "synthetic")
        ], mart
    proc = subprocess.run(
        [str(IQB), "report"], env=env(root), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        f"SYNTHETIC data (iqb sample), for trying the workspace, never for citing: "
        f"{SEP}..{OCT}, {OCT}..2024-11-01" in proc.stdout
    )
