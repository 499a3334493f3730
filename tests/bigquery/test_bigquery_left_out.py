"""BigQuery counts the measurements it leaves out, as the embedded engine does; and is
never run in place of a remote that cannot be used.

A table with NaN, infinite and out-of-range measurements is loaded into the
emulator; the entry's stats.json records how many were left out, and `iqb
extract run` says so. The embedded engine's side: tests/unit/test_nonfinite.py.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from extract.cache.layout import Entry
from extract.cache.store import LEFT_OUT_STAT
from extract.datasets import DATASETS_BY_NAME
from extract.extraction.engines.bigquery import EMULATOR_PROJECT
from tests.bigquery.bq_harness import (
    MONTH,
    NEXT_MONTH,
    Emulator,
    FaultProxy,
    _load,
    extract_on_bigquery,
    write_config,
)
from tests.unit.test_nonfinite import BAD, GOOD, write_raw

TABLE = f"{EMULATOR_PROJECT}.invalid.downloads"


def test_bigquery_records_and_says_how_many_measurements_it_left_out(
    bq_emulator: Emulator, tmp_path: Path
) -> None:
    write_raw(tmp_path, "unified_downloads", [*GOOD, *BAD])
    write_raw(tmp_path, "unified_downloads", BAD[:2], country="XX", name="xx.parquet")
    rows = pa.concat_tables(
        pq.read_table(p) for p in sorted((tmp_path / "raw/unified_downloads").glob("*.parquet"))
    )
    client = bq_emulator.client()
    client.create_dataset(TABLE.rsplit(".", 1)[0], exists_ok=True, timeout=30)
    _load(client, TABLE, rows, tmp_path)
    config = write_config(tmp_path / "pipeline.yaml", "[country]")
    code, output = extract_on_bigquery(
        config,
        tmp_path / "a",
        "--source-table",
        f"downloads={TABLE}",
        emulator=bq_emulator.url,
    )
    assert code == 0, output
    down = Entry(DATASETS_BY_NAME["downloads_by_country"], MONTH, NEXT_MONTH)
    stats = json.loads(down.stats_path(tmp_path / "a").read_text())
    assert stats[LEFT_OUT_STAT] == len(BAD) + 2
    data = pq.read_table(down.data_path(tmp_path / "a"))
    assert data.column("country_code").to_pylist() == ["ZA"]  # XX: nothing valid, no row
    assert data.column("sample_count").to_pylist() == [len(GOOD)]
    said = " ".join(output.split())
    assert f"left out {len(BAD) + 2} measurement(s)" in said, said


def test_an_unusable_remote_runs_nothing_on_bigquery_and_names_no_remote(
    bq_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The remote was meant to save the bill: BigQuery never runs in its place."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    config = write_config(tmp_path / "pipeline.yaml", "[country]")
    for extra in ((), ("--dry-run",)):
        code, output = extract_on_bigquery(
            config,
            tmp_path / "a",
            "--remote",
            f"https://127.0.0.1:{port}/m.json",
            *extra,
            emulator=bq_proxy.url,
        )
        said = " ".join(output.split())
        assert code == 1, said
        assert "2 failed" in said and "pass --no-remote to run without it" in said
        assert "nothing was run on bigquery" in said
        assert bq_proxy.jobs_inserted() == []
        assert not (tmp_path / "a" / "cache").exists()
