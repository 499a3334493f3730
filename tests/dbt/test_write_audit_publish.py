"""Write-audit-publish: what users see changes only when a build passed every test.

Real dbt builds on real DuckDB files over M-Lab's real October 2024 country
files, with faults made for real: damaged data with a valid record, a changed
entry, NaN and infinite values, an empty cache, a full disk (a small tmpfs),
a read-only disk, a kill at each step of a publish, two builds at once, and a
reader holding the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from extract.results.report import LEVELS
from extract.sync.manifest import publishable_files
from extract.transform.publish import PAUSE_ENV
from tests.conftest import REPO
from tests.dbt.helpers import (
    DBT,
    OCT_2024,
    DbtRun,
    copy_real_october,
    dbt,
    env,
    query,
    repo_copy,
    rewrite_entry,
    unchanged_views,
)

pytestmark = pytest.mark.slow

NOV_2024 = "cache/v1/20241101T000000Z/20241201T000000Z"


def set_value(table: pa.Table, column: str, codes: dict[str, float]) -> pa.Table:
    values = [
        codes.get(code, v)
        for code, v in zip(
            table["country_code"].to_pylist(), table[column].to_pylist(), strict=True
        )
    ]
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, pa.array(values, pa.float64()))


def add_november(root: Path) -> None:
    """A second period: October's files under November's key, with their own record."""
    for dataset in ("downloads_by_country", "uploads_by_country"):
        shutil.copytree(root / OCT_2024 / dataset, root / NOV_2024 / dataset)
        stats_path = root / NOV_2024 / dataset / "stats.json"
        stats = json.loads(stats_path.read_text())
        stats.update(period_start="2024-11-01", period_end="2024-12-01")
        stats_path.write_text(json.dumps(stats))


def published(root: Path) -> dict[str, str]:
    """What a reader and a push see: every published file and its SHA-256."""
    return {
        key: hashlib.sha256(path.read_bytes()).hexdigest()
        for key, path in publishable_files(root).items()
        if key.startswith("marts/")
    }


def builds(root: Path) -> set[str]:
    """The build folders under marts/.builds (each build's own, never changed, files)."""
    folder = root / "marts" / ".builds"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def visible(root: Path) -> tuple:
    """What a reader sees, as counts and an exact fingerprint of the values: a float sum
    would differ in its last bits with the order DuckDB's threads add the files in."""
    return (
        query(
            root,
            "select count(*), count(distinct country_code), "
            "bit_xor(hash(period_start, country_code, download_p95)) from quality_by_country",
        ),
        query(root, "select count(iqb_score) from iqb_scores_by_country"),
    )


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A root with the real October files, built and published once."""
    root = tmp_path / "artifacts"
    copy_real_october(root)
    dbt("build", artifacts=root, target=tmp_path / "t0")
    return root


def replacing(table: pa.Table) -> Callable[[pa.Table], pa.Table]:
    """A rewrite_entry edit that puts ``table`` in place of the entry's rows."""
    return lambda _: table


def test_data_that_fails_a_check_is_never_published(good: Path, tmp_path: Path) -> None:
    before_db, before_files, before_builds = visible(good), published(good), builds(good)
    assert before_db[0][0][0] == 237 and len(before_files) == 1
    original = pq.read_table(good / OCT_2024 / "downloads_by_country/data.parquet")

    def za_p50_above_p95(t: pa.Table) -> pa.Table:
        [za] = t.filter(pc.equal(t["country_code"], "ZA")).to_pylist()
        return set_value(t, "download_p50", {"ZA": za["download_p95"] + 1})

    # Damage with a stats.json that matches, so only the checks can catch it:
    # every row twice, which the build's own check of the period's file refuses
    # as it is written (before any test), and ZA's p50 above its p95, which
    # the mart's data test refuses. Each: the check, the mart, example keys.
    for damaged, message in (
        (
            pa.concat_tables([original, original]),
            f"quality_by_country fails: unique(period_start, period_end, country_code): "
            f"{2 * original.num_rows} row(s), e.g. 2024-10-01 2024-11-01 AD | "
            "2024-10-01 2024-11-01 AE | 2024-10-01 2024-11-01 AF (period 2024-10-01_2024-11-01)",
        ),
        (
            za_p50_above_p95(original),
            "quality_by_country fails: download percentiles non-decreasing from p1 to p99: "
            "1 row(s), e.g. 2024-10-01 2024-11-01 ZA",
        ),
    ):
        rewrite_entry(good, "downloads_by_country", replacing(damaged))
        for attempt in (1, 2):  # and it fails again until the data is fixed
            run = dbt("build", artifacts=good, target=tmp_path / f"t{attempt}", check=False)
            assert run.returncode != 0, run.output
            # our record now vouches for the downloads; the uploads are still upstream's
            assert "WARNING 1 cache entry in upstream's format" in run.output
            assert (
                "e.g. cache/v1/20241001T000000Z/20241101T000000Z/uploads_by_country." in run.output
            )
            assert message in run.output, run.output
            assert "NOTHING PUBLISHED" in run.output
            assert "quality_by_country: 1 period(s) to process" in run.output
            assert visible(good) == before_db  # the shell user sees the last good build
            assert published(good) == before_files  # so do Parquet readers and a push
            assert builds(good) == before_builds  # this build's own files are gone
            assert not any((good / "state" / "publish").iterdir())
        # a standalone `dbt test` tests what is published, and it is good
        assert dbt("test", artifacts=good, target=tmp_path / "t3", check=False).returncode == 0

    rewrite_entry(good, "downloads_by_country", replacing(original))  # fixed
    fixed = dbt("build", artifacts=good, target=tmp_path / "t4")
    assert "published" in fixed.output
    assert visible(good)[0] == before_db[0]


def test_a_changed_entry_is_reprocessed_without_full_refresh(good: Path, tmp_path: Path) -> None:
    [(de_before, loaded_before)] = query(
        good, "select upload_p95, loaded_at from quality_by_country where country_code = 'DE'"
    )
    rewrite_entry(
        good, "uploads_by_country", lambda t: set_value(t, "upload_p95", {"DE": 2 * de_before})
    )
    run = dbt("build", artifacts=good, target=tmp_path / "t1")
    assert "quality_by_country: 1 period(s) to process" in run.output
    [(de_after, loaded_after)] = query(
        good, "select upload_p95, loaded_at from quality_by_country where country_code = 'DE'"
    )
    assert de_after == 2 * de_before and loaded_after > loaded_before
    again = dbt("build", artifacts=good, target=tmp_path / "t2")
    assert "quality_by_country: 0 period(s) to process" in again.output


def test_nan_inf_and_unknown_codes_are_flagged_not_scored(good: Path, tmp_path: Path) -> None:
    def damage(t: pa.Table) -> pa.Table:
        t = set_value(t, "download_p95", {"DE": math.nan, "FR": math.inf})
        extra = t.filter(pc.equal(t["country_code"], "ZA"))  # a good row under bad codes
        bad_codes = [
            extra.set_column(0, "country_code", pa.array([code], pa.string()))
            for code in ("Q1", "", "USA")
        ]
        return pa.concat_tables([t, *bad_codes])

    rewrite_entry(good, "downloads_by_country", damage)
    rewrite_entry(
        good,
        "uploads_by_country",
        lambda t: pa.concat_tables(
            [
                t,
                *[
                    t.filter(pc.equal(t["country_code"], "ZA")).set_column(
                        0, "country_code", pa.array([code], pa.string())
                    )
                    for code in ("Q1", "", "USA")
                ],
            ]
        ),
    )
    run = dbt("build", artifacts=good, target=tmp_path / "t1")
    assert "NaN, infinite or out-of-range" in run.output and "DE 2024-10-01" in run.output
    rows = dict(
        query(
            good,
            "select country_code, score_status from iqb_scores_by_country "
            "where country_code in ('DE', 'FR', 'Q1', '', 'USA', 'ZA')",
        )
    )
    assert rows == {
        "DE": "invalid_values",
        "FR": "invalid_values",
        "Q1": "unknown_country",
        "": "unknown_country",
        "USA": "unknown_country",
        "ZA": "scored",
    }
    assert query(
        good,
        "select count(*) from iqb_scores_by_country where iqb_score is not null "
        "and country_code in ('DE', 'FR', 'Q1', '', 'USA')",
    ) == [(0,)]
    report = subprocess.run(
        [str(DBT.parent / "iqb"), "report"],
        env=env(good),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert not [c for c in ("DE", "FR", "Q1", "USA") if f"│ {c} " in report.stdout]
    [(scored,)] = query(good, "select count(iqb_score) from iqb_scores_by_country")
    assert f"of {scored} countries" in report.stdout
    assert "2 invalid values, 3 unknown country" in report.stdout


def test_readme_vars_command_gives_one_threshold(good: Path, tmp_path: Path) -> None:
    run = dbt("build", "--vars", "{min_sample_count: 500}", artifacts=good, target=tmp_path / "t")
    assert run.returncode == 0
    assert query(good, "select distinct min_sample_count from quality_by_country") == [(500,)]
    [(meets, wrong)] = query(
        good,
        "select count(*) filter (where meets_min_samples), count(*) filter (where "
        "meets_min_samples <> coalesce(download_sample_count >= 500 and "
        "upload_sample_count >= 500, false)) from quality_by_country",
    )
    assert meets > 0 and wrong == 0


def test_an_empty_cache_is_an_error_that_says_what_to_run(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    run = dbt("build", artifacts=root, target=tmp_path / "t", check=False)
    assert run.returncode != 0
    assert f"no cache entry under {root}/cache/v1" in run.output
    assert "iqb extract run" in run.output
    assert not (root / "marts").exists()


def test_a_corrupt_entry_stops_the_build_and_names_it(good: Path, tmp_path: Path) -> None:
    data = good / OCT_2024 / "uploads_by_country" / "data.parquet"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # truncated
    before = visible(good)
    run = dbt("build", artifacts=good, target=tmp_path / "t", check=False)
    assert run.returncode != 0
    assert "1 corrupt cache entry" in run.output and f"{OCT_2024}/uploads_by_country" in run.output
    assert "iqb extract run" in run.output
    assert visible(good) == before


# --- a full disk and a kill ----------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:  # not root, or no mount namespace: nothing real to test
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def resize(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def test_a_first_build_on_a_full_disk_leaves_nothing_that_blocks_the_next(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "104k") as disk:
        root = disk / "artifacts"
        copy_real_october(root)  # 96 KB: room for the cache, not for a database
        failed = dbt("build", artifacts=root, target=tmp_path / "t1", check=False)
        assert failed.returncode != 0
        assert not list(root.glob("marts/quality_by_*/*/*.parquet"))
        resize(disk, "64m")
        run = dbt("build", artifacts=root, target=tmp_path / "t2")
        assert query(root, "select count(*) from quality_by_country") == [(237,)]
        if list(root.glob("iqb.duckdb.damaged-*")):  # the 8 KB file of a failed first build
            assert "could not be opened as a DuckDB database" in run.output


def test_an_incremental_build_on_a_full_disk_publishes_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64m") as disk:
        root = disk / "artifacts"
        copy_real_october(root)
        dbt("build", artifacts=root, target=tmp_path / "t1")
        before_db, before_files = visible(root), published(root)
        add_november(root)
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler = disk / "filler"
        with open(filler, "wb") as fh:  # leave ~40 KB: less than one period's export
            fh.write(b"\0" * (free - 40_000))
        failed = dbt("build", artifacts=root, target=tmp_path / "t2", check=False)
        assert failed.returncode != 0
        for path in (root / "marts").rglob("*.parquet"):  # nothing 0-byte or truncated
            assert pq.read_metadata(path).num_rows > 0, path
        assert published(root) == before_files
        filler.unlink()
        assert visible(root) == before_db  # read after the filler is gone: the shell can open
        dbt("build", artifacts=root, target=tmp_path / "t3")
        assert query(root, "select count(distinct period_start) from quality_by_country") == [(2,)]


def start_build(
    root: Path, target: Path, *args: str, pause_at: str | None = None
) -> subprocess.Popen:
    """A real `dbt build` process in the background (its output in target/out.txt)."""
    target.mkdir(parents=True, exist_ok=True)
    environment = env(root)
    if pause_at:
        environment[PAUSE_ENV] = pause_at
    cmd = [str(DBT), "build", *args, "--project-dir", "dbt_project", "--profiles-dir", "profiles"]
    with open(target / "out.txt", "w") as out:
        return subprocess.Popen(
            [*cmd, "--target-path", str(target)], cwd=REPO, env=environment, stdout=out, stderr=out
        )


def wait_for(proc: subprocess.Popen, found: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 300
    while not found():
        assert proc.poll() is None, f"dbt ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in 300 s"
        time.sleep(0.01)


def thresholds(root: Path) -> tuple[list[tuple], list[tuple]]:
    """What a reader of iqb.duckdb sees: the thresholds of the rows, and of the build."""
    return (
        query(root, "select distinct min_sample_count, count(*) over () from quality_by_country"),
        query(root, "select min_sample_count from iqb_build"),
    )


def test_a_kill_during_writing_leaves_the_last_good_build(good: Path, tmp_path: Path) -> None:
    before_db, before_files, before_builds = visible(good), published(good), builds(good)
    add_november(good)
    proc = start_build(good, tmp_path / "t1")
    marts = good / "marts" / ".builds"
    wait_for(
        proc,
        lambda: any(
            p.parent.parent.parent.name not in before_builds
            for p in marts.glob("*/quality_by_country/*/data_0.parquet")
        ),
        "new period file",
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert visible(good) == before_db and published(good) == before_files
    dbt("build", artifacts=good, target=tmp_path / "t2")
    assert query(good, "select count(distinct period_start), count(*) from quality_by_country") == [
        (2, 2 * 237)
    ]
    assert not any((good / "state" / "publish").iterdir())


# The publish's steps (extract/transform/publish.py). The plugin pauses at the step
# named by IQB_PUBLISH_PAUSE_AT and the test then kills the dbt process for real: a
# kill at one precise instant of a publish cannot be timed from outside otherwise.
@pytest.mark.parametrize(
    ("step", "switched"),
    [("committed", False), ("written", False), ("switched", True), ("linked", True)],
)
def test_a_kill_at_each_publish_step_shows_one_build(
    good: Path, tmp_path: Path, step: str, switched: bool
) -> None:
    add_november(good)
    dbt("build", artifacts=good, target=tmp_path / "t1")  # two periods at 100
    old = thresholds(good)
    assert old == ([(100, 2 * 237)], [(100,)])
    old_files = published(good)

    proc = start_build(good, tmp_path / "t2", "--vars", "{min_sample_count: 500}", pause_at=step)
    wait_for(proc, lambda: any(good.glob(f"state/publish/*/PAUSED-{step}")), f"pause at {step}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    new = ([(500, 2 * 237)], [(500,)])
    assert thresholds(good) == (new if switched else old)  # one build, never a mix
    if not switched:
        assert published(good) == old_files

    run = dbt("build", "--vars", "{min_sample_count: 500}", artifacts=good, target=tmp_path / "t3")
    assert "finished the publish of an interrupted build" in run.output
    assert thresholds(good) == new
    assert {
        footer
        for path in (good / "marts").glob("quality_by_country/*/data_0.parquet")
        for footer in [pq.read_metadata(path).metadata[b"iqb.min_sample_count"]]
    } == {b"500"}  # the public names too
    assert not any((good / "state" / "publish").iterdir())
    # only the files the published database and the previous one read are kept
    record = json.loads((good / "state" / "dbt" / "published.json").read_text())
    assert builds(good) == {
        Path(rel).parts[2]
        for key in ("marts", "previous")
        for files in record[key].values()
        for rel in files.values()
    }


def test_the_published_database_lists_each_relation_once(good: Path) -> None:
    relations = query(
        good,
        "select schema_name, table_name, count(*) from duckdb_columns() "
        "where database_name = current_database() group by all",
    )
    assert {schema for schema, _, _ in relations} == {"main"}
    names = [name for _, name, _ in relations]
    assert len(names) == len(set(names))
    assert set(names) == {
        *(f"{kind}_{level}" for kind in ("quality_by", "iqb_scores_by") for level in LEVELS),
        "iso3166_countries",
        "iqb_requirements",
        "iqb_use_cases",
        "iqb_build",
    } | {n for n in names if n.startswith("iqb_scores_all_percentiles_by_")}
    views = query(good, "select schema_name, view_name from duckdb_views() where not internal")
    assert {schema for schema, _ in views} == {"main"} and len(views) == len(set(views))
    [(build_id, built_at, git_commit, threshold, percentile)] = query(
        good, "select * from iqb_build"
    )
    assert threshold == 100 and percentile == 95 and build_id and built_at is not None
    assert git_commit is None or len(git_commit) == 40
    assert query(good, "select data_type from duckdb_columns() where table_name = 'iqb_build'") == [
        ("VARCHAR",),
        ("TIMESTAMP WITH TIME ZONE",),
        ("VARCHAR",),
        ("INTEGER",),
        ("INTEGER",),
    ]
    working = good / "state" / "dbt" / "iqb.duckdb"  # dbt's relations are in its own file
    with duckdb.connect(str(working), read_only=True) as con:
        assert con.execute(
            "select count(*) from duckdb_views() where schema_name = 'staging'"
        ).fetchone() == (12,)


def test_a_reader_open_during_a_build_does_not_block_it(good: Path, tmp_path: Path) -> None:
    add_november(good)
    with duckdb.connect(str(good / "iqb.duckdb"), read_only=True) as reader:
        run = dbt("build", artifacts=good, target=tmp_path / "t1")
        assert "published build" in run.output
        # the open connection keeps the file it opened: the old build, whole
        assert reader.execute(
            "select count(distinct period_start) from quality_by_country"
        ).fetchall() == [(1,)]
    assert query(good, "select count(distinct period_start) from quality_by_country") == [(2,)]


def one_message(run: DbtRun, *expected: str) -> None:
    assert run.returncode != 0
    for text in expected:
        assert text in run.output, run.output
    assert "Traceback" not in run.output and "site-packages" not in run.output, run.output


def test_two_builds_at_once_and_a_held_database_each_give_one_message(
    good: Path, tmp_path: Path
) -> None:
    first = start_build(good, tmp_path / "t1", "--full-refresh", pause_at="committed")
    try:
        wait_for(first, lambda: any(good.glob("state/publish/*/PAUSED-committed")), "the pause")
        second = dbt("build", artifacts=good, target=tmp_path / "t2", check=False)
        one_message(second, "another dbt command is running on", str(good / "state/locks"))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)

    working = good / "state" / "dbt" / "iqb.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(working)!r}); "
            "print('open', flush=True); time.sleep(300)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        held = dbt("build", artifacts=good, target=tmp_path / "t3", check=False)
        one_message(held, f"{working} is held by another process (PID {holder.pid})")
    finally:
        holder.kill()
        holder.wait()
    assert "finished the publish" in dbt("build", artifacts=good, target=tmp_path / "t4").output


def test_a_read_only_disk_gives_one_message(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64m") as disk:
        root = disk / "artifacts"
        copy_real_october(root)
        dbt("build", artifacts=root, target=tmp_path / "t0")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        run = dbt("build", artifacts=root, target=tmp_path / "t", check=False)
        one_message(run, f"cannot write under {root}", "Read-only file system", "IQB_ARTIFACTS")
        # the report of that build cannot be written either: one line naming the file
        report = subprocess.run(
            [
                str(Path(sys.executable).parent / "iqb"),
                "report",
                "--html",
                "--artifacts",
                str(root),
            ],
            capture_output=True,
            text=True,
        )
        assert report.returncode == 1, report.stderr
        assert "Read-only file system" in report.stderr and str(root / "report") in report.stderr
        assert "Traceback" not in report.stderr and len(report.stderr.splitlines()) <= 3


def test_a_noop_build_rereads_nothing_but_a_changed_seed_is_tested(tmp_path: Path) -> None:
    repo = repo_copy(tmp_path)
    root = repo / "artifacts"
    copy_real_october(root)
    target = tmp_path / "t"
    window = "iqb: data tests read {} of the marts and {} of the scores"

    first = dbt("build", artifacts=None, target=target, cwd=repo)
    assert (
        window.format("the periods from 2024-10-01", "every period") in first.output
    )  # everything it wrote
    [(build,)] = query(root, "select build_id from iqb_build")
    noop = dbt("build", artifacts=None, target=target, cwd=repo)
    assert "0 period(s) to process" in noop.output
    assert window.format("no period", "no period") in noop.output  # nothing re-read
    assert f"nothing new to publish; readers still see build {build}" in noop.output
    assert query(root, "select build_id from iqb_build") == [(build,)]
    skipped_first, skipped_noop = unchanged_views(first.output), unchanged_views(noop.output)
    assert not skipped_first and len(skipped_noop) == 24  # no view is re-created

    seed = repo / "dbt_project/seeds/iqb_use_cases.csv"
    seed.write_text(seed.read_text().replace("gaming,1", "gaming,2"))
    changed = dbt("build", artifacts=None, target=target, cwd=repo)
    assert window.format("no period", "every period") in changed.output  # every score re-tested
    # the views that read the seed are re-created (their contracts checked again), no other
    assert unchanged_views(changed.output) == {v for v in skipped_noop if v.startswith("staging.")}
    assert len(unchanged_views(changed.output)) == 12
    assert query(root, "select build_id from iqb_build") != [(build,)]
    # a standalone `dbt test` tests every row of dbt's working relations
    alone = dbt("test", artifacts=None, target=tmp_path / "t2", cwd=repo)
    assert (
        window.format("every period", "every period") not in alone.output
    )  # no build: no window log
    assert "PASS=" in alone.output


def test_a_failed_seed_and_an_empty_build_are_never_published(tmp_path: Path) -> None:
    repo = repo_copy(tmp_path)
    root = repo / "artifacts"
    copy_real_october(root)
    dbt("build", artifacts=None, target=tmp_path / "t0", cwd=repo)
    before = visible(root), query(root, "select * from iqb_use_cases order by all")
    assert before[0][1][0][0] > 150  # countries with a score

    seed = repo / "dbt_project/seeds/iqb_use_cases.csv"
    good_seed = seed.read_text()
    seed.write_text(good_seed.replace("gaming,1", "gaming,-3"))  # a negative weight fails
    failed = dbt("build", artifacts=None, target=tmp_path / "t1", cwd=repo, check=False)
    assert failed.returncode != 0 and "NOTHING PUBLISHED" in failed.output
    # the CSV is fixed, and a build of one mart with a new month passes: the seed
    # that failed its test is still in dbt's working database, and must not reach
    # the published one, whose seeds and score views this build carries over
    seed.write_text(good_seed)
    add_november(root)
    one = dbt(  # the mart and what it reads (staging, the ISO seed), not the score seeds
        "build", "--select", "+quality_by_country", artifacts=None, target=tmp_path / "t2", cwd=repo
    )
    assert "published build" in one.output
    assert query(root, "select * from iqb_use_cases order by all") == before[1]
    after = visible(root)
    assert after[0][0][0] == 2 * 237 and after[1][0][0] == 2 * before[0][1][0][0]
    assert query(root, "select max(iqb_score) <= 1 from iqb_scores_by_country") == [(True,)]

    # --empty checks the SQL on no rows: nothing of it is published
    empty = dbt("build", "--empty", artifacts=None, target=tmp_path / "t3", cwd=repo)
    assert "NOTHING PUBLISHED" in empty.output and "--empty" in empty.output
    assert visible(root) == after


def test_unit_tests_run_on_request(good: Path, tmp_path: Path) -> None:
    """The routine build skips them (they pin SQL, not data); make test runs them here."""
    run = dbt(
        "test",
        "--select",
        "test_type:unit",
        "--vars",
        "{unit_tests: true}",
        artifacts=good,
        target=tmp_path / "t",
    )
    statuses = [s for k, s in run.statuses().items() if k.startswith("unit_test.")]
    assert len(statuses) >= 5 and set(statuses) == {"pass"}
