"""The full 12-dataset matrix for one month through `iqb extract run --engine bigquery`.

The unmodified google-cloud-bigquery client talks HTTP to bqemulator (through a
recording relay); the same sample also goes through the embedded DuckDB engine,
and the two caches are compared.

Percentile tolerance: the emulator computes exact quantiles (DuckDB's
``quantile_disc``), like our DuckDB engine, so values agree to 1e-9 relative,
not the 3% that production BigQuery's APPROX_QUANTILES needs. But bqemulator
1.4.0 reads ``APPROX_QUANTILES(x, n)[OFFSET(k)]`` one bucket too far (it returns
OFFSET(k+1); ``test_emulator_offset_quirk`` pins this), so the reference for
percentiles is the DuckDB engine running the same template with every offset
moved up by one. Key sets, row counts and sample counts are compared with the
DuckDB engine's real output as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import exp

from extract.cache.layout import Entry
from extract.cache.templates import template_hash, template_text
from extract.datasets import DATASETS, SOURCE_TABLES
from extract.extraction.engines import Query
from extract.extraction.engines.bigquery import DEFAULT_MAXIMUM_BYTES_BILLED, BigQueryEngine
from extract.extraction.engines.duckdb import DuckDBEngine
from extract.extraction.runner import RunOptions, run_matrix
from extract.extraction.sample.generate import RAW_SCHEMA, generate_month
from tests.bigquery.bq_harness import (
    MIRROR_TABLE,
    MONTH,
    NEXT_MONTH,
    SAMPLE_ROWS,
    Emulator,
    FaultProxy,
    extract_on_bigquery,
    write_config,
)

PERCENTILE_REL_TOL = 1e-9
UPSTREAM_STATS = {
    "query_start_time": str,
    "query_duration_seconds": float,
    "template_hash": str,
    "total_bytes_processed": int,
    "total_bytes_billed": int,
}
ENTRIES = [Entry(d, MONTH, NEXT_MONTH) for d in DATASETS]


def shift_offsets(template: str) -> str:
    """``APPROX_QUANTILES(x, n)[OFFSET(k)]`` -> ``[OFFSET(k + 1)]``, as the emulator reads it."""
    tree = sqlglot.parse_one(template, read="bigquery")
    for node in tree.find_all(exp.Bracket):
        if isinstance(node.this, exp.ApproxQuantiles):
            node.set("expressions", [exp.Literal.number(int(node.expressions[0].this) + 1)])
    return tree.sql("bigquery")


@dataclass
class MatrixRun:
    code: int
    output: str
    artifacts: Path
    reference: Path  # the DuckDB engine's cache for the same sample
    proxy: FaultProxy
    config: Path


@pytest.fixture(scope="module")
def run(bq_emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixRun]:
    work = tmp_path_factory.mktemp("bq-matrix")
    config = write_config(work / "pipeline.yaml")
    proxy = FaultProxy(bq_emulator.url)
    try:
        code, output = extract_on_bigquery(
            config,
            work / "bq",
            emulator=proxy.url,
        )
        reference = work / "duckdb"
        summary = run_matrix(
            ENTRIES, DuckDBEngine(bq_emulator.raw_root), reference, RunOptions(jobs=2)
        )
        assert not summary.failed, [r.error for r in summary.failed]
        yield MatrixRun(code, output, work / "bq", reference, proxy, config)
    finally:
        proxy.close()


def test_every_entry_is_done(run: MatrixRun) -> None:
    assert run.code == 0, run.output
    assert "done" in run.output and "failed" not in run.output
    for entry in ENTRIES:
        assert entry.data_path(run.artifacts).is_file(), entry.label


def test_each_file_has_the_exact_schema_of_its_dataset(run: MatrixRun) -> None:
    for entry in ENTRIES:
        schema = pq.read_schema(entry.data_path(run.artifacts)).remove_metadata()
        assert schema.equals(entry.dataset.schema), entry.label


def test_rows_keys_and_sample_counts_equal_the_duckdb_engine(run: MatrixRun) -> None:
    for entry in ENTRIES:
        cols = [*entry.dataset.keys, "sample_count"]
        got = pq.read_table(entry.data_path(run.artifacts), columns=cols)
        want = pq.read_table(entry.data_path(run.reference), columns=cols)
        assert got.num_rows == want.num_rows > 0, entry.label
        assert set(zip(*got.to_pydict().values(), strict=True)) == set(
            zip(*want.to_pydict().values(), strict=True)
        ), entry.label


def test_percentiles_agree_with_exact_quantiles(run: MatrixRun, bq_emulator: Emulator) -> None:
    engine = DuckDBEngine(bq_emulator.raw_root)
    for entry in ENTRIES:
        ds = entry.dataset
        got = pq.read_table(entry.data_path(run.artifacts)).sort_by(
            [(k, "ascending") for k in ds.keys]
        )
        result = engine.run(Query(ds.name, shift_offsets(template_text(ds)), MONTH, NEXT_MONTH))
        want = pa.Table.from_batches(list(result.batches)).sort_by(
            [(k, "ascending") for k in ds.keys]
        )
        assert got.num_rows == want.num_rows
        for col in ds.metric_columns:
            a = got[col].to_numpy(zero_copy_only=False)
            b = want[col].to_numpy(zero_copy_only=False)
            assert a == pytest.approx(b, rel=PERCENTILE_REL_TOL), f"{ds.name}.{col}"


def test_stats_json_is_complete(run: MatrixRun) -> None:
    for entry in ENTRIES:
        stats = json.loads(entry.stats_path(run.artifacts).read_text())
        for name, kind in UPSTREAM_STATS.items():
            assert isinstance(stats[name], kind), (entry.label, name, stats.get(name))
        assert stats["template_hash"] == template_hash(entry.dataset)
        assert stats["query_start_time"].endswith("Z")
        datetime.fromisoformat(stats["query_start_time"])
        assert stats["query_duration_seconds"] >= 0
        assert stats["cache_hit"] is False
        assert stats["job_id"].startswith(f"iqb_{entry.dataset.name}_20241001_")
        assert stats["engine"] == "bigquery"
        assert stats["maximum_bytes_billed"] == DEFAULT_MAXIMUM_BYTES_BILLED
        assert stats["source_tables"] == [entry.dataset.source_table]
        assert stats["rows"] == pq.read_metadata(entry.data_path(run.artifacts)).num_rows


def test_every_job_is_capped_labelled_and_parameterised(run: MatrixRun) -> None:
    jobs = [b["configuration"] for b in run.proxy.jobs_inserted()]
    assert len(jobs) == len(ENTRIES)
    seen = set()
    for config in jobs:
        q = config["query"]
        dataset = config["labels"]["dataset"]
        seen.add(dataset)
        assert config["labels"] == {
            "tool": "iqb",
            "dataset": dataset,
            "period": "20241001-20241101",
        }
        assert not config.get("dryRun")
        assert int(q["maximumBytesBilled"]) == DEFAULT_MAXIMUM_BYTES_BILLED
        assert q["useLegacySql"] is False
        params = {
            p["name"]: (p["parameterType"]["type"], p["parameterValue"]["value"])
            for p in q["queryParameters"]
        }
        assert params == {"start_date": ("DATE", "2024-10-01"), "end_date": ("DATE", "2024-11-01")}
        assert q["parameterMode"] == "NAMED"
        table = SOURCE_TABLES[dataset.split("_by_")[0]]
        assert f"`{table}`" in q["query"] and "--" not in q["query"]
    assert seen == {d.name for d in DATASETS}


def test_a_second_run_and_its_dry_run_submit_no_job(run: MatrixRun) -> None:
    before = len(run.proxy.jobs_inserted())
    code, output = extract_on_bigquery(
        run.config,
        run.artifacts,
        emulator=run.proxy.url,
    )
    assert code == 0, output
    assert "skipped" in output and "done" not in output
    code, output = extract_on_bigquery(
        run.config,
        run.artifacts,
        "--dry-run",
        emulator=run.proxy.url,
    )
    assert code == 0, output
    assert "nothing to price: no BigQuery job would run" in output
    assert len(run.proxy.jobs_inserted()) == before


def test_results_stream_page_by_page(bq_emulator: Emulator, tmp_path: Path) -> None:
    """REST reads hold one page: batches never exceed page_rows, however large the result."""
    engine = BigQueryEngine(emulator=bq_emulator.url, page_rows=500)
    ds = next(d for d in DATASETS if d.name == "downloads_by_country_city_asn")
    result = engine.run(Query(ds.name, template_text(ds), MONTH, NEXT_MONTH))
    sizes, result_bytes, peak = [], 0, 0
    for batch in result.batches:  # held one at a time, as the cache writer does
        sizes.append(batch.num_rows)
        result_bytes += batch.nbytes
        peak = max(peak, pa.total_allocated_bytes())
    assert sum(sizes) > 4 * 500
    assert max(sizes) <= 500 and len(sizes) >= sum(sizes) // 500
    assert peak < result_bytes / 4  # Arrow memory is a page, not the result


def test_source_table_override_reads_the_named_table(bq_emulator: Emulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "pipeline.yaml", "[country]")
    code, output = extract_on_bigquery(
        config,
        tmp_path / "a",
        "--source-table",
        f"downloads={MIRROR_TABLE}",
        emulator=bq_emulator.url,
    )
    assert code == 0, output
    con = duckdb.connect()
    con.register(
        "mirror", generate_month("downloads", MONTH, rows=SAMPLE_ROWS, seed=7).cast(RAW_SCHEMA)
    )
    [(expected,)] = con.execute(
        "SELECT count(*) FROM mirror WHERE client.Geo.CountryCode IS NOT NULL AND "
        "a.MeanThroughputMbps IS NOT NULL AND a.MinRTT IS NOT NULL AND a.LossRate IS NOT NULL"
    ).fetchall()
    down, up = (Entry(d, MONTH, NEXT_MONTH) for d in DATASETS if d.level == "country")
    got = pc.sum(pq.read_table(down.data_path(tmp_path / "a"))["sample_count"]).as_py()
    assert got == expected
    assert json.loads(down.stats_path(tmp_path / "a").read_text())["source_tables"] == [
        MIRROR_TABLE
    ]
    assert json.loads(up.stats_path(tmp_path / "a").read_text())["source_tables"] == [
        SOURCE_TABLES["uploads"]
    ]


def test_emulator_offset_quirk(bq_emulator: Emulator) -> None:
    """bqemulator 1.4.0 returns OFFSET(k+1); BigQuery gives 100 here. If this fails, the
    emulator was fixed: drop ``shift_offsets`` and compare with the DuckDB engine directly."""
    rows = list(
        bq_emulator.client()
        .query(
            "SELECT APPROX_QUANTILES(x, 10)[OFFSET(1)] AS q FROM UNNEST(GENERATE_ARRAY(1, 1000)) x"
        )
        .result(timeout=30)
    )
    assert rows[0]["q"] == 200
