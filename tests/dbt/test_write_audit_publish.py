"""Write-audit-publish: what users see changes only when a build passed every test.

Real dbt builds on real DuckDB files over M-Lab's real October 2024 country
files, with faults made for real: damaged data with a valid record, a changed
entry, NaN and infinite values, an empty cache, a full disk (a small tmpfs),
and a kill.
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
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from extract.sync.manifest import publishable_files
from tests.conftest import REPO
from tests.dbt.helpers import DBT, OCT_2024, copy_real_october, dbt, env, query, repo_copy

pytestmark = pytest.mark.slow

NOV_2024 = "cache/v1/20241101T000000Z/20241201T000000Z"


def rewrite_entry(
    root: Path, dataset: str, change: Callable[[pa.Table], pa.Table], period: str = OCT_2024
) -> None:
    """Replace an entry's data as a re-extraction would: new file, matching stats.json."""
    data = root / period / dataset / "data.parquet"
    pq.write_table(change(pq.read_table(data)), data)
    stats_path = data.with_name("stats.json")
    stats = json.loads(stats_path.read_text())
    stats.update(size=data.stat().st_size, sha256=hashlib.sha256(data.read_bytes()).hexdigest())
    stats_path.write_text(json.dumps(stats))


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


def visible(root: Path) -> tuple:
    return (
        query(
            root,
            "select count(*), count(distinct country_code), sum(download_p95) "
            "from quality_by_country",
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


def test_data_that_fails_a_test_is_never_published(good: Path, tmp_path: Path) -> None:
    before_db, before_files = visible(good), published(good)
    assert before_db[0][0][0] == 237 and len(before_files) == 1

    # every row twice, and ZA's p50 above its p95, with a stats.json that matches:
    # only the tests can catch it
    def damage(t: pa.Table) -> pa.Table:
        [za] = t.filter(pc.equal(t["country_code"], "ZA")).to_pylist()
        return pa.concat_tables([set_value(t, "download_p50", {"ZA": za["download_p95"] + 1}), t])

    rewrite_entry(good, "downloads_by_country", damage)
    duplicated = pq.read_metadata(good / OCT_2024 / "downloads_by_country/data.parquet").num_rows

    for attempt in (1, 2):  # and it fails again until the data is fixed
        run = dbt("build", artifacts=good, target=tmp_path / f"t{attempt}", check=False)
        assert run.returncode != 0, run.output
        # our record now vouches for the downloads; the uploads are still upstream's
        assert "WARNING 1 cache entry in upstream's format" in run.output
        assert "e.g. cache/v1/20241001T000000Z/20241101T000000Z/uploads_by_country." in run.output
        # the check, the mart and example keys, in one message
        assert (
            "quality_by_country fails: download percentiles non-decreasing from p1 to p99: "
            "1 row(s), e.g. 2024-10-01 2024-11-01 ZA; unique(period_start, period_end, "
            f"country_code): {duplicated} row(s), e.g. 2024-10-01 2024-11-01 AD | " in run.output
        )
        assert "NOTHING PUBLISHED" in run.output
        assert "quality_by_country: 1 period(s) to process" in run.output
        assert visible(good) == before_db  # the shell user sees the last good build
        assert published(good) == before_files  # so do Parquet readers and a push
        assert not (good / "marts" / ".staging").exists()
    # a standalone `dbt test` tests what is published, and it is good
    assert dbt("test", artifacts=good, target=tmp_path / "t3", check=False).returncode == 0

    rewrite_entry(
        good, "downloads_by_country", lambda t: t.slice(t.num_rows // 2)
    )  # fixed: the second, unchanged copy
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


@pytest.mark.parametrize("moment", ["staged", "committed"])
def test_a_killed_build_is_followed_by_one_that_completes(
    good: Path, tmp_path: Path, moment: str
) -> None:
    before_db, before_files = visible(good), published(good)
    add_november(good)
    staging = good / "marts" / ".staging"
    marker = "*/quality_by_country/*/data_0.parquet" if moment == "staged" else "*/COMMIT"
    cmd = [
        str(DBT),
        "build",
        "--project-dir",
        "dbt_project",
        "--profiles-dir",
        "profiles",
        "--target-path",
        str(tmp_path / "t1"),
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env(good), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    killed = False
    while proc.poll() is None and time.monotonic() < deadline:
        if staging.is_dir() and any(staging.glob(marker)):
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.002)
    proc.wait(timeout=60)
    if moment == "staged":
        assert killed
        assert visible(good) == before_db and published(good) == before_files
    run = dbt("build", artifacts=good, target=tmp_path / "t2")
    if killed and moment == "committed":
        assert "finishing the publish of an interrupted build" in run.output
    assert not staging.exists()
    assert query(good, "select count(distinct period_start), count(*) from quality_by_country") == [
        (2, 2 * 237)
    ]


def test_a_noop_build_rereads_nothing_but_a_changed_seed_is_tested(tmp_path: Path) -> None:
    repo = repo_copy(tmp_path)
    root = repo / "artifacts"
    copy_real_october(root)
    target = tmp_path / "t"

    def row_checks() -> dict[str, bool]:
        """Per model: does its row_checks test read nothing (`where false`)?"""
        return {
            f.parent.name.removesuffix(".yml"): "where false" in f.read_text()
            for f in (target / "run/iqb/models/marts").glob("*/*.yml/*_row_checks.sql")
        }

    dbt("build", artifacts=None, target=target, cwd=repo)
    first = row_checks()  # the first build tests everything it wrote (country level only)
    assert not first["quality_by_country"] and not first["iqb_scores_by_country"]
    shutil.rmtree(target / "run")
    noop = dbt("build", artifacts=None, target=target, cwd=repo)
    assert "0 period(s) to process" in noop.output
    assert len(row_checks()) == 12 and all(row_checks().values())

    seed = repo / "dbt_project/seeds/iqb_use_cases.csv"
    seed.write_text(seed.read_text().replace("gaming,1", "gaming,2"))
    shutil.rmtree(target / "run")
    dbt("build", artifacts=None, target=target, cwd=repo)
    checks = row_checks()
    assert all(v for k, v in checks.items() if k.startswith("quality_by_"))
    assert not any(v for k, v in checks.items() if k.startswith("iqb_scores_by_"))


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
    # the CSV is fixed, and a build of one mart passes: the seed that failed its
    # test is still in `audit`, and must not reach `main`
    seed.write_text(good_seed)
    one = dbt(
        "build", "--select", "quality_by_country", artifacts=None, target=tmp_path / "t2", cwd=repo
    )
    assert "published" in one.output
    assert (visible(root), query(root, "select * from iqb_use_cases order by all")) == before
    assert query(root, "select max(iqb_score) <= 1 from iqb_scores_by_country") == [(True,)]

    # --empty checks the SQL on no rows: nothing of it is published
    empty = dbt("build", "--empty", artifacts=None, target=tmp_path / "t3", cwd=repo)
    assert "NOTHING PUBLISHED" in empty.output and "--empty" in empty.output
    assert visible(root) == before[0]


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
