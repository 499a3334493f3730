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

from extract import defaults
from extract.extraction.engines import EngineError, NoInputError, Query, QueryResult
from extract.extraction.engines.sql import swap_tables
from extract.paths import ArtifactPaths

BATCH_ROWS = 64_000
# Parquet key-value metadata that `iqb sample` puts in each file it writes.
SYNTHETIC_MARK = (b"iqb_synthetic", b"true")


def raw_table_name(fq_table: str) -> str:
    """``measurement-lab.ndt.unified_downloads`` -> ``unified_downloads``."""
    return fq_table.rsplit(".", 1)[-1]


def _exact_quantiles(tree: exp.Expr) -> exp.Expr:
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
            sqlglot.parse_one(
                f"quantile_disc({field}, [{fractions}])[{ks.index(k) + 1}]", read="duckdb"
            )
        )
    return tree


def to_duckdb_sql(bigquery_sql: str) -> tuple[str, list[str]]:
    """Transpile a template; return the DuckDB SQL and the raw tables it reads."""
    tree, tables = swap_tables(bigquery_sql, raw_table_name)
    return _exact_quantiles(tree).sql("duckdb"), tables


# Exact quantiles keep every value of a group in memory until the group is done,
# and DuckDB cannot spill that state (a memory_limit is ignored by it: 2.2 GB RSS
# at 40M rows with a 400 MB limit, measured). So a month is run in chunks of
# whole countries, about CHUNK_ROWS_PER_GB raw rows per gigabyte of the memory
# cap: memory follows the chunk, not the month, and every group still sees all
# its values (results are identical; tests/unit/test_engine_chunks.py).
CHUNK_ROWS_PER_GB = 1_000_000


class DuckDBEngine:
    """Runs templates in an in-memory DuckDB over the raw Parquet files."""

    name = "duckdb"

    def __init__(
        self,
        artifacts: Path,
        threads: int | None = None,
        memory_limit_gb: float = defaults.MEMORY_GB,
    ) -> None:
        self.raw = ArtifactPaths(Path(artifacts)).raw
        self.threads = threads
        self.chunk_rows = max(1, int(memory_limit_gb * CHUNK_ROWS_PER_GB))

    def _connect(self) -> duckdb.DuckDBPyConnection:
        config: dict[str, str | bool | int | float | list[str]] = {  # the type connect takes
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        if self.threads:
            config["threads"] = self.threads
        return duckdb.connect(":memory:", config=config)

    def _register_views(
        self, con: duckdb.DuckDBPyConnection, tables: list[str], query: Query
    ) -> list[Path]:
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
                {"files": paths, "start_date": query.start, "end_date": query.end},
            ).fetchall()
            if not rows:
                raise NoInputError(
                    f"no raw measurements for {table} in {query.start}..{query.end} in {folder}"
                )
            used += sorted(Path(r[0]) for r in rows)
        return used

    def _source(self, files: list[Path]) -> dict:
        """stats.json ``source``: synthetic if any input file came from ``iqb sample``."""
        synthetic = [f for f in files if is_synthetic(f)]
        return {
            "kind": "synthetic" if synthetic else "raw",
            "engine": self.name,
            "files": [
                f.relative_to(self.raw.parent).as_posix()
                if f.is_relative_to(self.raw.parent)
                else str(f)
                for f in files
            ],
        }

    def _chunks(self, con: duckdb.DuckDBPyConnection, table: str, query: Query) -> list[list[str]]:
        """Consecutive country codes, in order, about ``chunk_rows`` raw rows each."""
        counts = con.execute(
            f"SELECT client.Geo.CountryCode, count(*) FROM {table} "
            "WHERE date >= $start_date AND date < $end_date "
            "AND client.Geo.CountryCode IS NOT NULL GROUP BY 1 ORDER BY 1",
            {"start_date": query.start, "end_date": query.end},
        ).fetchall()
        chunks: list[list[str]] = [[]]
        rows = 0
        for code, n in counts:
            if chunks[-1] and rows + n > self.chunk_rows:
                chunks.append([])
                rows = 0
            chunks[-1].append(code)
            rows += n
        return chunks

    def run(self, query: Query) -> QueryResult:
        sql, tables = to_duckdb_sql(query.sql)
        con = self._connect()
        params = {"start_date": query.start, "end_date": query.end}
        try:
            used = self._register_views(con, tables, query)
            chunks = self._chunks(con, tables[0], query) if len(tables) == 1 else [[]]
            if len(chunks) == 1:
                readers = iter([con.execute(sql, params).to_arrow_reader(BATCH_ROWS)])
            else:
                # The templates sort by country first, so chunks of consecutive
                # countries, run in order, give the whole month's order.
                tree = sqlglot.parse_one(sql, read="duckdb")
                readers = (
                    con.execute(_only_countries(tree, codes).sql("duckdb"), params).to_arrow_reader(
                        BATCH_ROWS
                    )
                    for codes in chunks
                )
        except duckdb.Error as err:
            con.close()
            raise EngineError(f"DuckDB failed on {query.dataset}: {err}") from err
        except EngineError:
            con.close()
            raise
        bytes_read = sum(
            os.path.getsize(f) for t in tables for f in (self.raw / t).glob("*.parquet")
        )
        return QueryResult(
            batches=_stream(readers, con),
            stats={
                "total_bytes_processed": bytes_read,
                "total_bytes_billed": 0,
                "source": self._source(used),
            },
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


def _only_countries(tree: exp.Expr, codes: list[str]) -> exp.Expr:
    """The query restricted to the given country codes (one chunk of a month).

    The condition goes on the SELECT that reads the raw table (a template may
    group over a subquery of it), where ``client`` is in scope.
    """
    restricted = tree.copy()
    reader = next(
        s
        for s in restricted.find_all(exp.Select)
        if isinstance(from_ := s.args.get("from_"), exp.From) and isinstance(from_.this, exp.Table)
    )
    country = sqlglot.parse_one("client.Geo.CountryCode", read="duckdb")
    reader.where(country.isin(*codes), copy=False)
    return restricted


def _stream(
    readers: Iterator[pa.RecordBatchReader], con: duckdb.DuckDBPyConnection
) -> Iterator[pa.RecordBatch]:
    """Batches of each chunk's result in turn; a chunk's query runs when it is reached."""
    try:
        for reader in readers:
            yield from reader
    except duckdb.Error as err:
        raise EngineError(f"DuckDB failed: {err}") from err
    finally:
        con.close()
