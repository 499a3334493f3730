"""NaN, infinite and out-of-range measurements never reach a percentile (embedded engine).

The templates leave them out exactly as they leave out NULLs; the BigQuery
engine runs the same template text (tests/bigquery checks the templates run there).
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from extract.cache.store import template_text
from extract.datasets import DATASETS_BY_NAME
from extract.engines import Query
from extract.engines.duckdb import DuckDBEngine
from extract.sample.generate import RAW_SCHEMA

OCT, NOV = date(2024, 10, 1), date(2024, 11, 1)
GOOD = [(10.0, 20.0, 0.0), (20.0, 30.0, 0.01), (30.0, 40.0, 0.02)]
BAD = [
    (math.nan, 20.0, 0.0),
    (math.inf, 20.0, 0.0),
    (-5.0, 20.0, 0.0),
    (10.0, math.nan, 0.0),
    (10.0, -math.inf, 0.0),
    (10.0, -1.0, 0.0),
    (10.0, 20.0, math.nan),
    (10.0, 20.0, 1.5),
    (10.0, 20.0, -0.1),
]


def write_raw(root: Path, table: str, rows: list[tuple[float, float, float]]) -> None:
    geo = {
        "CountryCode": "ZA",
        "Subdivision1ISOCode": "ZA-GP",
        "Subdivision1Name": "Gauteng",
        "city": "Johannesburg",
    }
    records = [
        {
            "date": date(2024, 10, 15),
            "client": {"Geo": geo, "Network": {"ASNumber": 1, "ASName": "AS one"}},
            "a": {"MeanThroughputMbps": down, "MinRTT": rtt, "LossRate": loss},
        }
        for down, rtt, loss in rows
    ]
    folder = root / "raw" / table
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records, schema=RAW_SCHEMA), folder / "part.parquet")


def run(root: Path, dataset: str) -> dict:
    ds = DATASETS_BY_NAME[dataset]
    result = DuckDBEngine(root).run(Query(dataset, template_text(ds), OCT, NOV))
    [row] = pa.Table.from_batches(list(result.batches)).to_pylist()
    return row


def test_downloads_leave_out_every_non_finite_or_out_of_range_measurement(tmp_path: Path) -> None:
    write_raw(tmp_path, "unified_downloads", [*GOOD, *BAD])
    row = run(tmp_path, "downloads_by_country")
    assert row["sample_count"] == len(GOOD)
    values = [v for k, v in row.items() if k.endswith(tuple(f"_p{p}" for p in (1, 50, 99)))]
    assert values and all(math.isfinite(v) for v in values)
    assert row["download_p99"] == 30.0 and row["latency_p99"] == 20.0  # inverted label
    assert 0 <= row["loss_p1"] <= 1


def test_uploads_leave_out_non_finite_throughput(tmp_path: Path) -> None:
    bad = [(math.nan, 1.0, 0.0), (math.inf, 1.0, 0.0), (-1.0, 1.0, 0.0)]
    write_raw(tmp_path, "unified_uploads", [*GOOD, *bad])
    row = run(tmp_path, "uploads_by_country_city_asn")
    assert row["sample_count"] == len(GOOD)
    assert row["upload_p99"] == 30.0 and row["upload_p1"] == 10.0
