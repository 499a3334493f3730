"""The embedded engine: the BigQuery templates, transpiled by sqlglot, on local Parquet.

Raw measurements live under ``{artifacts}/raw/{unified_downloads,unified_uploads}/*.parquet``
(written by ``iqb sample`` or by you, with the BigQuery table's shape). Each
template's fully qualified table is rewritten to a view over those files, and
``APPROX_QUANTILES(x, 100)[OFFSET(k)]`` to DuckDB's exact ``quantile_disc``:
DuckDB's approximate t-digest is ~5% off at p95 on these distributions, while
exact quantiles cost about the same at local scale (docs/extract.md).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from extract.engines import EngineError, Query, QueryResult
from extract.engines.sql import swap_tables

BATCH_ROWS = 64_000


def raw_dir(artifacts: Path) -> Path:
    return artifacts / "raw"


def raw_table_name(fq_table: str) -> str:
    """``measurement-lab.ndt.unified_downloads`` -> ``unified_downloads``."""
    return fq_table.rsplit(".", 1)[-1]


def _exact_quantiles(tree: exp.Expression) -> exp.Expression:
    """Rewrite every ``APPROX_QUANTILES(x, 100)[OFFSET(k)]`` to one exact list per column.

    All offsets of one column share a single ``quantile_disc(x, [...])`` call, which
    DuckDB evaluates once per group (identical aggregates are deduplicated).
    """
    offsets: dict[str, set[int]] = defaultdict(set)
    brackets: list[tuple[exp.Bracket, str, int]] = []
    for node in tree.find_all(exp.Bracket):
        inner = node.this
        if not isinstance(inner, exp.ApproxQuantiles) or len(node.expressions) != 1:
            continue
        buckets = inner.expression
        index = node.expressions[0]
        if not (isinstance(buckets, exp.Literal) and buckets.this == "100"):
            raise EngineError("only APPROX_QUANTILES(x, 100) is supported by the DuckDB engine")
        if not isinstance(index, exp.Literal):
            raise EngineError("APPROX_QUANTILES offsets must be literals")
        field = inner.this.sql("duckdb")
        offsets[field].add(int(index.this))
        brackets.append((node, field, int(index.this)))
    for node, field, k in brackets:
        ks = sorted(offsets[field])
        fractions = ", ".join(str(q / 100) for q in ks)
        node.replace(
            sqlglot.parse_one(f"quantile_disc({field}, [{fractions}])[{ks.index(k) + 1}]",
                              read="duckdb")
        )
    return tree


def to_duckdb_sql(bigquery_sql: str) -> tuple[str, list[str]]:
    """Transpile a template; return the DuckDB SQL and the raw tables it reads."""
    tree, tables = swap_tables(bigquery_sql, raw_table_name)
    return _exact_quantiles(tree).sql("duckdb"), tables


class DuckDBEngine:
    """Runs templates in an in-memory DuckDB over the raw Parquet files."""

    name = "duckdb"

    def __init__(self, artifacts: Path, threads: int | None = None) -> None:
        self.raw = raw_dir(Path(artifacts))
        self.threads = threads

    def _connect(self) -> duckdb.DuckDBPyConnection:
        config: dict[str, str | int | bool] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        if self.threads:
            config["threads"] = self.threads
        return duckdb.connect(":memory:", config=config)

    def _register_views(self, con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
        for table in tables:
            folder = self.raw / table
            files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
            if not files:
                raise EngineError(
                    f"no raw measurements for {table}: expected Parquet files in {folder} "
                    "(run `iqb sample` to make a synthetic sample)"
                )
            pattern = str(folder / "*.parquet").replace("'", "''")
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{pattern}')")

    def run(self, query: Query) -> QueryResult:
        sql, tables = to_duckdb_sql(query.sql)
        con = self._connect()
        try:
            self._register_views(con, tables)
            reader = con.execute(
                sql, {"start_date": query.start, "end_date": query.end}
            ).to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as err:
            con.close()
            raise EngineError(f"DuckDB failed on {query.dataset}: {err}") from err
        bytes_read = sum(os.path.getsize(f) for t in tables
                         for f in (self.raw / t).glob("*.parquet"))
        return QueryResult(
            batches=_stream(reader, con),
            stats={"total_bytes_processed": bytes_read, "total_bytes_billed": 0},
        )


def _stream(reader: pa.RecordBatchReader, con: duckdb.DuckDBPyConnection
            ) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    finally:
        con.close()
