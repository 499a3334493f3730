"""Query engines: run a BigQuery-dialect template for one period, yield Arrow batches.

The extractor only knows the :class:`Engine` protocol, so BigQuery and the
embedded DuckDB engine are interchangeable (``--engine``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa


@dataclass(frozen=True)
class Query:
    """One cell of the matrix: a template's text and the period it is bound to."""

    dataset: str
    sql: str
    start: date
    end: date


@dataclass
class QueryResult:
    """Batches to stream, and engine statistics that are final once they are consumed.

    ``stats`` holds the upstream stats.json fields the engine knows
    (``total_bytes_processed``, ``total_bytes_billed``, ...); the cache writer
    adds timing, rows and schema version itself.
    """

    batches: Iterator[pa.RecordBatch]
    stats: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """What the extractor needs from an engine: a name and a way to run one query."""

    name: str

    def run(self, query: Query) -> QueryResult: ...


@runtime_checkable
class CostEstimator(Protocol):
    """An engine that can price a query without running it (BigQuery's dry run)."""

    def estimate(self, query: Query) -> int:
        """Bytes the query would scan."""
        ...


class EngineError(RuntimeError):
    """A query failed in a way the user can act on; the message says how."""


class NoInputError(EngineError):
    """The engine has no input for the period: no entry is written (an empty one
    would pass for a real month without tests, and hide it from a later real run)."""


def make_engine(name: str, **options: Any) -> Engine:
    """Build an engine by CLI name; imports lazily so DuckDB users never load BigQuery."""
    if name == "duckdb":
        from extract.extraction.engines.duckdb import DuckDBEngine

        return DuckDBEngine(**options)
    if name == "bigquery":
        from extract.extraction.engines.bigquery import BigQueryEngine

        return BigQueryEngine(**options)
    raise EngineError(f"unknown engine {name!r}: choose duckdb or bigquery")
