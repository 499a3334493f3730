"""The embedded engine: the BigQuery templates, transpiled by sqlglot, on local Parquet.

Raw measurements live under ``{artifacts}/raw/{unified_downloads,unified_uploads}/*.parquet``
(written by ``iqb sample`` or by you, with the BigQuery table's shape). Each
template's fully qualified table is rewritten to a view over those files, and
``APPROX_QUANTILES(x, 100)[OFFSET(k)]`` to DuckDB's exact ``quantile_disc``:
DuckDB's approximate t-digest is ~5% off at p95 on these distributions, while
exact quantiles cost about the same at local scale (docs/extract.md).

Provenance: the result's stats say which raw files had rows in the period
(``source.files``), and ``source.kind`` is ``synthetic`` when any of them was
written by ``iqb sample`` (it says so in the file's own Parquet metadata, which
travels with the file), else ``raw``. A period no raw file has rows for raises
:class:`NoInputError`: no input is not an empty result.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from extract.engines import EngineError, NoInputError, Query, QueryResult
from extract.engines.sql import swap_tables

BATCH_ROWS = 64_000
# Parquet key-value metadata that `iqb sample` puts in each file it writes.
SYNTHETIC_MARK = (b"iqb_synthetic", b"true")


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

    def _register_views(self, con: duckdb.DuckDBPyConnection, tables: list[str],
                        query: Query) -> list[Path]:
        """A view per raw table; returns the files that have rows in the query's period."""
        used: list[Path] = []
        for table in tables:
            folder = self.raw / table
            files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
            if not files:
                raise NoInputError(
                    f"no raw measurements for {table}: expected Parquet files in {folder} "
                    "(run `iqb sample` to make a synthetic sample)"
                )
            # The files are passed as a list, never as a glob pattern: an artifacts path
            # with [brackets], braces, quotes or spaces must mean just itself.
            paths = [str(f) for f in files]
            con.read_parquet(paths).to_view(table)
            # Only the date column is read, and row groups outside the period are skipped.
            rows = con.execute(
                "SELECT DISTINCT filename FROM read_parquet($files, filename = true) "
                "WHERE date >= $start_date AND date < $end_date",
                {"files": paths, "start_date": query.start, "end_date": query.end}).fetchall()
            if not rows:
                raise NoInputError(f"no raw measurements for {table} in {query.start}.."
                                   f"{query.end} in {folder}")
            used += sorted(Path(r[0]) for r in rows)
        return used

    def _source(self, files: list[Path]) -> dict:
        """stats.json ``source``: synthetic if any input file came from ``iqb sample``."""
        synthetic = [f for f in files if is_synthetic(f)]
        return {"kind": "synthetic" if synthetic else "raw", "engine": self.name,
                "files": [f.relative_to(self.raw.parent).as_posix()
                          if f.is_relative_to(self.raw.parent) else str(f) for f in files]}

    def run(self, query: Query) -> QueryResult:
        sql, tables = to_duckdb_sql(query.sql)
        con = self._connect()
        try:
            used = self._register_views(con, tables, query)
            reader = con.execute(
                sql, {"start_date": query.start, "end_date": query.end}
            ).to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as err:
            con.close()
            raise EngineError(f"DuckDB failed on {query.dataset}: {err}") from err
        except EngineError:
            con.close()
            raise
        bytes_read = sum(os.path.getsize(f) for t in tables
                         for f in (self.raw / t).glob("*.parquet"))
        return QueryResult(
            batches=_stream(reader, con),
            stats={"total_bytes_processed": bytes_read, "total_bytes_billed": 0,
                   "source": self._source(used)},
        )


def is_synthetic(path: Path) -> bool:
    """Whether a raw file says (in its own Parquet metadata) that ``iqb sample`` made it.

    The mark travels with the file wherever it is copied, unlike a marker file beside it.
    """
    key, value = SYNTHETIC_MARK
    try:
        return (pq.read_schema(path).metadata or {}).get(key) == value
    except (OSError, pa.ArrowException):
        return False


def _stream(reader: pa.RecordBatchReader, con: duckdb.DuckDBPyConnection
            ) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    finally:
        con.close()
