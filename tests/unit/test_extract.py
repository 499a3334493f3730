"""The extractor end to end on the embedded engine: schemas, cache states, crash safety."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from extract.cache.layout import Entry
from extract.cache.state import EntryState, entry_state
from extract.cache.store import write_entry
from extract.cache.templates import template_text
from extract.cli import app
from extract.datasets import DATASETS, DATASETS_BY_NAME, PERCENTILES
from extract.extraction.engines.duckdb import to_duckdb_sql
from extract.extraction.sample.generate import write_sample

OCT, NOV = date(2024, 10, 1), date(2024, 11, 1)
REPO = Path(__file__).resolve().parents[2]
ONE_MONTH = """\
version: 0
matrix:
  dates:
    - {start: "2024-10-01", end: "2024-11-01"}
  granularities: [country, country_asn, subdivision1, subdivision1_asn, city, city_asn]
"""


def iqb(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw measurements for October 2024 only, shared (read-only) by the tests here."""
    root = tmp_path_factory.mktemp("raw")
    write_sample(root, [OCT], rows=60_000, seed=1)
    return root


@pytest.fixture
def workspace(tmp_path: Path, sampled: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An artifacts root holding the shared raw sample, and a one-month config."""
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "raw").symlink_to(sampled / "raw")
    monkeypatch.setenv("IQB_ARTIFACTS", str(root))
    (tmp_path / "pipeline.yaml").write_text(ONE_MONTH)
    monkeypatch.chdir(tmp_path)
    return root


def entry(name: str, start: date = OCT, end: date = NOV) -> Entry:
    return Entry(DATASETS_BY_NAME[name], start, end)


def test_templates_bind_dates_as_parameters_and_use_exact_quantiles() -> None:
    for d in DATASETS:
        text = template_text(d)
        assert "@start_date" in text and "@end_date" in text
        assert "2024" not in text and "{" not in text  # nothing pasted in
        sql, tables = to_duckdb_sql(text)
        assert tables == [d.source_table.rsplit(".", 1)[1]]
        assert "quantile_disc" in sql.lower() and "approx" not in sql.lower()
        assert "$start_date" in sql


def test_all_twelve_datasets_have_their_exact_schema(workspace: Path) -> None:
    code, output = iqb("extract", "run")
    assert code == 0, output
    for d in DATASETS:
        path = entry(d.name).data_path(workspace)
        table = pq.read_table(path)
        assert table.schema.equals(d.schema), f"{d.name}: {table.schema}"
        assert table.num_rows > 0
        for key in d.keys:
            assert table.column(key).null_count == 0, (d.name, key)
        rows = table.to_pylist()
        for row in rows[:50]:
            for metric in d.metrics:
                values = [row[f"{metric}_p{p}"] for p in PERCENTILES]
                ordered = sorted(values, reverse=metric in ("latency", "loss"))
                assert values == ordered, (d.name, metric, values)  # the polarity convention
        stats = json.loads(entry(d.name).stats_path(workspace).read_text())
        for field in (
            "query_start_time",
            "query_duration_seconds",
            "template_hash",
            "total_bytes_processed",
            "total_bytes_billed",
        ):
            assert field in stats
        assert stats["rows"] == table.num_rows
        assert stats["engine"] == "duckdb" and stats["schema_version"] == 1
    # Every level sums to the same number of measurements as its coarser level or fewer
    country = pq.read_table(entry("downloads_by_country").data_path(workspace))
    city = pq.read_table(entry("downloads_by_country_city").data_path(workspace))
    assert (
        0
        < sum(city.column("sample_count").to_pylist())
        < sum(country.column("sample_count").to_pylist())
    )  # rows with a NULL city are left out


def test_a_month_without_raw_data_is_no_input_not_an_empty_entry(
    workspace: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty.yaml").write_text(
        ONE_MONTH.replace("2024-10-01", "2019-01-01").replace("2024-11-01", "2019-02-01")
    )
    code, output = iqb("extract", "run", "--config", "empty.yaml")
    assert code == 1, output
    text = " ".join(output.split())
    assert "no input │ 12" in text
    assert "no input for 1 period(s): 2019-01-01..2019-02-01; nothing was written" in text
    assert not (workspace / "cache").exists() or not list((workspace / "cache").rglob("*.*"))
    code, output = iqb("cache", "status", "--config", "empty.yaml", "--json")
    assert json.loads(output)["counts"] == {"missing": 12}


def test_an_empty_result_is_written_with_the_dataset_schema(workspace: Path) -> None:
    """Input that filters down to no rows is a real (empty) result: typed, not zero-column."""
    for d in DATASETS:
        e = entry(d.name)
        written = write_entry(e, workspace, iter([]), {}, "duckdb")
        assert written.rows == 0
        table = pq.read_table(e.data_path(workspace))
        assert table.num_rows == 0 and table.schema.equals(d.schema)
        assert entry_state(e, workspace) == EntryState.PRESENT


def test_second_run_skips_and_force_reruns(workspace: Path) -> None:
    assert iqb("extract", "run")[0] == 0
    path = entry("uploads_by_country").data_path(workspace)
    first = path.stat().st_mtime_ns
    code, output = iqb("extract", "run")
    assert code == 0 and "skipped" in output and "done" not in output
    assert path.stat().st_mtime_ns == first
    code, output = iqb("extract", "run", "--force", "--jobs", "3")
    assert code == 0 and "done" in output
    assert path.stat().st_mtime_ns != first
    assert not list(workspace.rglob("*.tmp"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # readable like any new file


def test_stale_entries_are_reported_and_refreshed_on_request(workspace: Path) -> None:
    assert iqb("extract", "run")[0] == 0
    stale = entry("downloads_by_country_asn")
    stats_path = stale.stats_path(workspace)
    stats = json.loads(stats_path.read_text())
    stats["template_hash"] = "0" * 64  # as if written by an older template
    stats_path.write_text(json.dumps(stats))
    assert entry_state(stale, workspace) == EntryState.STALE

    code, output = iqb("cache", "status", "--json")
    assert code == 0
    status = json.loads(output)
    assert status["counts"] == {"present": 11, "stale": 1}

    # the selection options narrow the matrix, and a bad value is refused
    code, output = iqb("cache", "status", "--json", "--granularity", "country_asn")
    assert code == 0
    assert json.loads(output)["counts"] == {"present": 1, "stale": 1}
    code, output = iqb("cache", "status", "--json", "--dataset", "uploads_by_country")
    assert code == 0
    assert [e["key"] for e in json.loads(output)["entries"]] == [entry("uploads_by_country").key]
    code, output = iqb("cache", "status", "--granularity", "planet")
    assert code == 2 and "unknown granularity 'planet'" in output

    code, output = iqb("extract", "run")
    assert code == 0 and "stale" in output and "--refresh-stale" in output
    assert json.loads(stats_path.read_text())["template_hash"] == "0" * 64

    code, output = iqb("extract", "run", "--refresh-stale")
    assert code == 0
    assert entry_state(stale, workspace) == EntryState.PRESENT


def test_dry_run_writes_nothing(workspace: Path) -> None:
    code, output = iqb("extract", "run", "--dry-run")
    assert code == 0
    assert output.count("would run") == 12
    assert not (workspace / "cache").exists()


def test_missing_raw_data_is_no_input_for_every_entry(
    tmp_path: Path, artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        ONE_MONTH.replace(
            "[country, country_asn, subdivision1, subdivision1_asn, city, city_asn]", "[country]"
        )
    )
    monkeypatch.chdir(tmp_path)
    code, output = iqb("extract", "run")
    assert code == 1
    text = " ".join(output.split())
    assert "no raw measurements for unified_downloads" in text
    assert "no raw measurements for unified_uploads" in text
    assert "iqb sample" in text and "no input │ 2" in text
    assert not (artifacts / "cache").exists() or not list((artifacts / "cache").rglob("*.*"))


WRITER = """
import sys, time
from datetime import date
from pathlib import Path
from extract.cache.layout import Entry
from extract.cache.store import lock_for, write_entry
from extract.datasets import DATASETS_BY_NAME
from extract.extraction.engines.duckdb import DuckDBEngine
from extract.extraction.engines import Query
from extract.cache.templates import template_text

root = Path(sys.argv[1])
e = Entry(DATASETS_BY_NAME["downloads_by_country_city_asn"], date(2024, 10, 1), date(2024, 11, 1))
result = DuckDBEngine(root).run(Query(e.dataset.name, template_text(e.dataset), e.start, e.end))

def slow():
    for i, batch in enumerate(result.batches):
        for row in range(0, batch.num_rows, 100):
            yield batch.slice(row, 100)
            if i == 0 and row == 0:
                print("writing", flush=True)
            time.sleep(0.01)

with lock_for(e, root):
    write_entry(e, root, slow(), result.stats, "duckdb")
print("finished", flush=True)
"""


def test_a_writer_killed_mid_write_leaves_nothing_visible(workspace: Path) -> None:
    target = entry("downloads_by_country_city_asn")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(workspace)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    assert not target.data_path(workspace).exists()
    assert not target.stats_path(workspace).exists()
    leftovers = list(target.dir(workspace).glob(".*.tmp"))
    assert leftovers, "the killed writer should have left its hidden temp file"
    assert entry_state(target, workspace) == EntryState.MISSING

    code, output = iqb("extract", "run")
    assert code == 0, output
    assert entry_state(target, workspace) == EntryState.PRESENT
    assert pq.read_table(target.data_path(workspace)).num_rows > 0
    assert not list(target.dir(workspace).glob(".*.tmp"))


def test_concurrent_runs_write_each_entry_once(workspace: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "extract.cli", "extract", "run", "--jobs", "2"]
    env = {**os.environ, "IQB_ARTIFACTS": str(workspace)}
    procs = [
        subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for d in DATASETS:
        assert entry_state(entry(d.name), workspace) == EntryState.PRESENT
    starts = {
        json.loads(entry(d.name).stats_path(workspace).read_text())["query_start_time"]
        for d in DATASETS
    }
    assert len(starts) == 12  # each entry was run by exactly one of the two processes
    done = sum(
        int(line.split("│")[2])
        for out in outputs
        for line in out.splitlines()
        if line.startswith("│ done")
    )
    assert done == 12, outputs
