"""Faults: transient errors retried, failures confined to their entry, every wait bounded,
and the up-front checks (emulator down, missing table) fail before anything is written.

Errors come from the relay in front of the real emulator, shaped as BigQuery
sends them; the client, retries and cache writer are the real ones.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from extract.cache.layout import Entry
from extract.cache.store import TMP_SUFFIX
from extract.cache.templates import template_text
from extract.datasets import DATASETS
from extract.extraction.engines import EngineError, Query
from extract.extraction.engines.bigquery import BigQueryEngine
from extract.extraction.runner import Outcome, RunOptions, run_matrix
from tests.bigquery.bq_harness import (
    EMULATOR_PROJECT,
    MONTH,
    NEXT_MONTH,
    Emulator,
    Fault,
    FaultProxy,
    extract_on_bigquery,
    write_config,
)
from tests.servers import free_port

COUNTRY = [Entry(d, MONTH, NEXT_MONTH) for d in DATASETS if d.level == "country"]
TWO_LEVELS = [
    Entry(d, MONTH, NEXT_MONTH) for d in DATASETS if d.level in ("country", "country_asn")
]
JOB_INSERT = r"/jobs\?|/jobs$"
RESULTS = r"/queries/iqb_"


def assert_nothing_left(entry: Entry, root: Path) -> None:
    """No data, no stats, no temp file: a failed entry is simply absent."""
    assert not entry.data_path(root).exists(), entry.label
    assert not entry.stats_path(root).exists(), entry.label
    folder = entry.dir(root)
    assert not (folder.is_dir() and list(folder.glob(f"*{TMP_SUFFIX}"))), entry.label


def test_transient_5xx_and_rate_limits_are_retried(bq_proxy: FaultProxy, tmp_path: Path) -> None:
    bq_proxy.faults = [
        Fault("POST", JOB_INSERT, status=503, times=2),
        Fault("GET", RESULTS, status=429, times=1),
    ]
    engine = BigQueryEngine(emulator=bq_proxy.url)
    summary = run_matrix(COUNTRY, engine, tmp_path, RunOptions(jobs=1))
    assert [r.outcome for r in summary.reports] == [Outcome.DONE, Outcome.DONE], [
        r.error for r in summary.reports
    ]
    assert [f.served for f in bq_proxy.faults] == [2, 1]
    assert [s.status for s in bq_proxy.seen if s.method == "POST"][:3] == [503, 503, 200]


def test_a_persistent_5xx_fails_its_entry_after_bounded_retries(
    bq_proxy: FaultProxy, tmp_path: Path
) -> None:
    bq_proxy.faults = [Fault("POST", JOB_INSERT, status=503, times=None, body="unified_uploads")]
    engine = BigQueryEngine(emulator=bq_proxy.url, retry_deadline=3)
    t0 = time.monotonic()
    summary = run_matrix(TWO_LEVELS, engine, tmp_path, RunOptions(jobs=2))
    assert time.monotonic() - t0 < 30
    for report in summary.reports:
        if report.entry.dataset.direction == "uploads":
            assert report.outcome == Outcome.FAILED
            assert "still failing after retries" in report.error
            assert "ServiceUnavailable" in report.error and "503" in report.error
            assert_nothing_left(report.entry, tmp_path)
        else:
            assert report.outcome == Outcome.DONE, report.error
    assert bq_proxy.faults[0].served >= 4  # each upload entry was tried more than once


def test_the_summary_names_each_failure_and_the_others_still_run(
    bq_proxy: FaultProxy, tmp_path: Path
) -> None:
    bq_proxy.faults = [Fault("POST", JOB_INSERT, status=400, times=None, body="unified_uploads")]
    config = write_config(tmp_path / "pipeline.yaml", "[country, country_asn]")
    code, output = extract_on_bigquery(
        config,
        tmp_path / "a",
        emulator=bq_proxy.url,
    )
    assert code == 1
    summary = output[output.index("extract summary") :]
    for entry in TWO_LEVELS:
        if entry.dataset.direction == "uploads":
            # one line per distinct reason, naming the entries that failed with it
            assert any(
                entry.label in line
                and "failed" in line
                and "EngineError: BigQuery job: BadRequest: " in line
                for line in summary.splitlines()
            ), entry.label
            assert_nothing_left(entry, tmp_path / "a")
        else:
            assert entry.label not in summary
            assert entry.data_path(tmp_path / "a").is_file()


def test_a_failure_mid_stream_leaves_nothing_partial(bq_proxy: FaultProxy, tmp_path: Path) -> None:
    """Pages after the first fail: batches were already written to a temp file."""
    bq_proxy.faults = [Fault("GET", r"pageToken=", status=500, times=None)]
    engine = BigQueryEngine(emulator=bq_proxy.url, page_rows=200, retry_deadline=2)
    entry = next(
        Entry(d, MONTH, NEXT_MONTH) for d in DATASETS if d.name == "downloads_by_country_asn"
    )
    [report] = run_matrix([entry], engine, tmp_path, RunOptions()).reports
    assert report.outcome == Outcome.FAILED
    assert "reading the result of job iqb_downloads_by_country_asn_" in report.error
    assert "InternalServerError" in report.error
    assert bq_proxy.faults[0].served >= 2
    assert_nothing_left(entry, tmp_path)


def test_a_job_that_never_finishes_times_out_and_is_cancelled(
    bq_proxy: FaultProxy, tmp_path: Path
) -> None:
    bq_proxy.faults = [
        Fault("POST", JOB_INSERT, status=None, times=None, running=True),
        Fault("GET", r"/(jobs|queries)/iqb_", status=None, times=None, delay=0.2, running=True),
    ]
    statuses: list[str | None] = []
    engine = BigQueryEngine(
        emulator=bq_proxy.url, job_timeout=2, on_status=lambda _q, message: statuses.append(message)
    )
    t0 = time.monotonic()
    [report] = run_matrix(COUNTRY[:1], engine, tmp_path, RunOptions()).reports
    assert time.monotonic() - t0 < 20
    assert report.outcome == Outcome.FAILED
    assert "timed out" in report.error and "not done after 2s" in report.error
    assert any(s.method == "POST" and "/cancel" in s.path for s in bq_proxy.seen)
    assert any(m and m.startswith("RUNNING") for m in statuses)  # progress while waiting
    assert statuses[-1] is None  # the progress line is cleared
    assert_nothing_left(COUNTRY[0], tmp_path)


def test_emulator_down_is_one_clear_error_within_seconds(tmp_path: Path) -> None:
    config = write_config(tmp_path / "pipeline.yaml")
    t0 = time.monotonic()
    code, output = extract_on_bigquery(
        config,
        tmp_path / "a",
        emulator=f"127.0.0.1:{free_port()}",
    )
    assert time.monotonic() - t0 < 10
    assert code == 2
    assert "cannot reach the BigQuery API at http://127.0.0.1:" in output
    assert not (tmp_path / "a").exists()


def test_a_missing_table_is_named_before_anything_runs(
    bq_emulator: Emulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "pipeline.yaml")
    missing = f"{EMULATOR_PROJECT}.ndt.no_such_table"
    code, output = extract_on_bigquery(
        config,
        tmp_path / "a",
        "--source-table",
        f"uploads={missing}",
        emulator=bq_emulator.url,
    )
    assert code == 2
    assert f"source table {missing} was not found" in " ".join(output.split())
    assert not (tmp_path / "a").exists()


def test_a_table_dropped_after_the_check_fails_its_job_naming_the_table(
    bq_emulator: Emulator,
) -> None:
    client = bq_emulator.client()
    gone = f"{EMULATOR_PROJECT}.scratch.gone"
    client.create_dataset(gone.rsplit(".", 1)[0], exists_ok=True, timeout=30)
    client.query(
        f"CREATE TABLE `{gone}` AS SELECT * FROM `measurement-lab.ndt.unified_downloads` LIMIT 10"
    ).result(timeout=60)
    engine = BigQueryEngine(
        emulator=bq_emulator.url, source_tables={"measurement-lab.ndt.unified_downloads": gone}
    )
    client.delete_table(gone, timeout=30)
    ds = COUNTRY[0].dataset
    with pytest.raises(EngineError, match=f"NotFound: .*{gone}"):
        engine.run(Query(ds.name, template_text(ds), date(2024, 10, 1), date(2024, 11, 1)))
