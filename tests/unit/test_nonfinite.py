"""NaN, infinite and out-of-range measurements never reach a percentile (embedded engine).

The templates leave them out exactly as they leave out NULLs; the BigQuery
engine runs the same template text (tests/bigquery checks the templates run there).
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from extract.cache.layout import Entry
from extract.cache.store import LEFT_OUT_STAT, split_left_out, template_text
from extract.cli import app
from extract.datasets import DATASETS_BY_NAME
from extract.extraction.engines import Query
from extract.extraction.engines.duckdb import DuckDBEngine
from extract.extraction.sample.generate import RAW_SCHEMA

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


def write_raw(
    root: Path,
    table: str,
    rows: list[tuple[float, float, float]],
    country: str = "ZA",
    name: str = "part.parquet",
) -> None:
    geo = {
        "CountryCode": country,
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
    pq.write_table(pa.Table.from_pylist(records, schema=RAW_SCHEMA), folder / name)


def run(root: Path, dataset: str) -> dict:
    ds = DATASETS_BY_NAME[dataset]
    result = DuckDBEngine(root).run(Query(dataset, template_text(ds), OCT, NOV))
    batches = [split_left_out(b)[0] for b in result.batches]
    [row] = pa.Table.from_batches(batches).to_pylist()
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


def test_left_out_measurements_are_counted_in_stats_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each entry records how many measurements it left out; `extract run` and
    `cache status` say so. A place whose every measurement was left out is no row,
    but its measurements are counted."""
    root = tmp_path / "artifacts"
    write_raw(root, "unified_downloads", [*GOOD, *BAD])
    write_raw(root, "unified_downloads", BAD[:2], country="XX", name="other.parquet")
    write_raw(root, "unified_uploads", GOOD)
    monkeypatch.setenv("IQB_ARTIFACTS", str(root))
    config = tmp_path / "p.yaml"
    config.write_text(
        'version: 0\nmatrix:\n  dates:\n    - {start: "2024-10-01", end: "2024-11-01"}\n'
        "  granularities: [country]\n"
    )
    runner = CliRunner()
    result = runner.invoke(app, ["extract", "run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    down = Entry(DATASETS_BY_NAME["downloads_by_country"], OCT, NOV)
    up = Entry(DATASETS_BY_NAME["uploads_by_country"], OCT, NOV)
    assert json.loads(down.stats_path(root).read_text())[LEFT_OUT_STAT] == len(BAD) + 2
    assert json.loads(up.stats_path(root).read_text())[LEFT_OUT_STAT] == 0
    table = pq.read_table(down.data_path(root))
    assert table.column("country_code").to_pylist() == ["ZA"]  # XX had nothing valid
    assert table.column("sample_count").to_pylist() == [len(GOOD)]
    assert "left_out_count" not in table.schema.names
    said = " ".join(result.output.split())
    assert f"left out {len(BAD) + 2} measurement(s)" in said
    assert f"downloads_by_country 2024-10-01..2024-11-01 ({len(BAD) + 2})" in said
    assert "uploads_by_country 2024-10-01..2024-11-01 (" not in said
    status = runner.invoke(app, ["cache", "status", "--config", str(config)])
    said = " ".join(status.output.split())
    assert "1 entry left out measurements" in said, said
    assert f"{down.key} ({len(BAD) + 2})" in said and f"{up.key} (" not in said
    status = runner.invoke(app, ["cache", "status", "--config", str(config), "--json"])
    by_key = {e["key"]: e for e in json.loads(status.output)["entries"]}
    assert by_key[down.key]["left_out_invalid"] == len(BAD) + 2
    assert by_key[up.key]["left_out_invalid"] == 0


def test_counting_changes_no_row_of_the_previous_query(tmp_path: Path) -> None:
    """Today's templates and those of the commit previous_hashes.json names (which left
    such measurements out in WHERE) give the same rows, to the bit, on the same input."""
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    commit = json.loads((repo / "extract/extraction/templates/previous_hashes.json").read_text())[
        "commit"
    ]
    write_raw(tmp_path, "unified_downloads", [*GOOD, *BAD, *GOOD[:2]])
    write_raw(tmp_path, "unified_downloads", BAD, country="XX", name="x.parquet")
    write_raw(tmp_path, "unified_downloads", GOOD[1:], country="AR", name="ar.parquet")
    for name in ("downloads_by_country", "downloads_by_country_city_asn"):
        old = subprocess.run(
            ["git", "show", f"{commit}:extract/templates/{name}.sql"],
            capture_output=True,
            text=True,
            cwd=repo,
        )
        if old.returncode != 0:
            pytest.skip("no git history here")
        engine = DuckDBEngine(tmp_path)
        before = pa.Table.from_batches(list(engine.run(Query(name, old.stdout, OCT, NOV)).batches))
        now = pa.Table.from_batches(
            [
                split_left_out(b)[0]
                for b in engine.run(
                    Query(name, template_text(DATASETS_BY_NAME[name]), OCT, NOV)
                ).batches
            ]
        )
        assert now.cast(before.schema).equals(before), name
        assert before.num_rows == 2
