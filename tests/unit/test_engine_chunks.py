"""A month computed in chunks of countries equals the month computed at once, byte for byte."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from extract.cache.store import template_text
from extract.datasets import DATASETS_BY_NAME
from extract.extraction.engines import Query
from extract.extraction.engines.duckdb import CHUNK_ROWS_PER_GB, DuckDBEngine
from extract.extraction.sample.generate import write_sample

OCT, NOV = date(2024, 10, 1), date(2024, 11, 1)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chunks")
    write_sample(root, [OCT], rows=40_000, seed=5)
    return root


@pytest.mark.parametrize("dataset", ["downloads_by_country", "uploads_by_country_city_asn"])
def test_chunked_month_equals_the_whole_month(sample: Path, dataset: str) -> None:
    ds = DATASETS_BY_NAME[dataset]
    query = Query(dataset, template_text(ds), OCT, NOV)

    def table(engine: DuckDBEngine) -> pa.Table:
        return pa.Table.from_batches(list(engine.run(query).batches), schema=None)

    whole = table(DuckDBEngine(sample))
    small = DuckDBEngine(sample, memory_limit_gb=4_000 / CHUNK_ROWS_PER_GB)  # ~4,000 rows
    con = small._connect()
    try:
        small._register_views(con, ["unified_" + ds.direction], query)
        chunks = small._chunks(con, "unified_" + ds.direction, query)
    finally:
        con.close()
    assert len(chunks) > 3  # really chunked
    chunked = table(small)
    assert chunked.num_rows == whole.num_rows > 100
    assert chunked.equals(whole)  # same rows, same order, same exact quantiles
