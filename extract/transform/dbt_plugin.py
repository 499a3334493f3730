"""dbt-duckdb plugin: the few things dbt's SQL and Jinja cannot do, as DuckDB functions.

``profiles/profiles.yml`` loads it. Each function returns JSON text (Jinja reads
it with ``fromjson``) and is called from the macros of ``dbt_project/``:

- ``iqb_root()``: the absolute artifacts root (the database's folder), so no
  view ever stores a path relative to where dbt happened to run;
- ``iqb_paths()``: every path under that root and the pattern of a cache path's
  period, as ``extract/paths.py`` and ``extract/cache/layout.py`` name them, so
  no macro spells the tree (``dbt run-operation iqb_paths`` prints them);
- ``iqb_check_cache()`` / ``iqb_cache_files(dataset)``: the cache's readable
  entries (``extract/cache/catalog.py``), never a glob;
- ``iqb_plan`` / ``iqb_commit`` / ``iqb_recover`` / ``iqb_discard`` /
  ``iqb_published_files``: write-audit-publish of the marts (``extract/transform/marts.py``).

Python stays here and in the modules it calls; the SQL stays in the macros.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from extract.cache.catalog import CatalogEntry, Integrity, scan
from extract.cache.layout import PERIOD_SQL_RE
from extract.paths import DATABASE, ArtifactPaths
from extract.transform import marts

# DuckDB's words for a file it cannot read as a database (not for a lock held by
# another process, which must stay an error).
_DAMAGED = ("Could not read enough bytes", "not a valid DuckDB database")


def set_aside_if_damaged(database: Path) -> Path | None:
    """Move a database file that DuckDB cannot open (a first build killed by a full
    disk leaves an 8 KB file) out of the way, so the build that follows can start.

    Nothing is lost: the file holds only views over published Parquet files and
    seeds, all of which the next build re-creates. The damaged file is kept
    beside it, named as such, for inspection.
    """
    if not database.is_file():
        return None
    try:
        duckdb.connect(str(database), read_only=True).close()
        return None
    except duckdb.Error as exc:
        if not any(sign in str(exc) for sign in _DAMAGED):
            return None  # e.g. locked by another process: dbt reports that itself
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = database.with_name(f"{database.name}.damaged-{stamp}")
    os.replace(database, aside)
    wal = database.with_name(database.name + ".wal")
    if wal.exists():
        os.replace(wal, aside.with_name(aside.name + ".wal"))
    print(
        f"iqb: {database} could not be opened as a DuckDB database (a build stopped by a "
        f"full disk or a kill?); it only holds what a build re-creates, so it was moved to "
        f"{aside.name} and this build starts a new one",
        file=sys.stderr,
    )
    return aside


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        # The profile names the database; its folder is the artifacts root (a database
        # not named as extract/paths.py says is refused: Python would not find it).
        self.paths = ArtifactPaths.of_database(
            self.creds.path if self.creds is not None else DATABASE
        )
        self.root = self.paths.root
        self.entries: list[CatalogEntry] | None = None
        set_aside_if_damaged(self.paths.database)

    def _entries(self) -> list[CatalogEntry]:
        if self.entries is None:
            self.entries = scan(self.root)
        return self.entries

    def check_cache(self) -> str:
        """Scan the cache afresh (once per invocation, from on-run-start)."""
        self.entries = scan(self.root)
        return json.dumps(
            {
                "cache": str(self.paths.cache),
                "readable": sum(c.readable for c in self.entries),
                "corrupt": [
                    {"key": c.entry.key, "reason": c.reason}
                    for c in marts.corrupt_entries(self.entries)
                ],
                "unverified": [
                    c.entry.key for c in self.entries if c.integrity == Integrity.UNVERIFIED
                ],
            }
        )

    def paths_json(self) -> str:
        return json.dumps({**self.paths.as_dict(), "cache_period_regex": PERIOD_SQL_RE})

    def cache_files(self, dataset: str) -> str:
        return json.dumps(
            [
                str(c.entry.data_path(self.root))
                for c in self._entries()
                if c.readable and c.entry.dataset.name == dataset
            ]
        )

    def plan(
        self,
        mart: str,
        datasets: str,
        code_hash: str,
        min_sample_count: int,
        full_refresh: bool,
        invocation: str,
    ) -> str:
        return json.dumps(
            marts.plan_mart(
                self.root,
                invocation,
                mart,
                datasets.split(","),
                code_hash,
                min_sample_count,
                full_refresh,
                self._entries(),
            )
        )

    def commit(self, invocation: str, min_sample_count: int) -> str:
        try:
            return json.dumps({"published": marts.commit(self.root, invocation, min_sample_count)})
        except marts.PublishError as exc:
            return json.dumps({"error": str(exc)})

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        # params are DuckDB type names; list[Any] because create_function's list is invariant
        def fn(name: str, func: Any, params: list[Any]) -> None:
            conn.create_function(name, func, params, "VARCHAR", side_effects=True)

        def discard(invocation: str) -> str:
            marts.discard(self.root, invocation)
            return "ok"

        fn("iqb_root", lambda: str(self.root), [])
        fn("iqb_paths", self.paths_json, [])
        fn("iqb_check_cache", self.check_cache, [])
        fn("iqb_cache_files", self.cache_files, ["VARCHAR"])
        fn("iqb_plan", self.plan, ["VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BOOLEAN", "VARCHAR"])
        fn("iqb_commit", self.commit, ["VARCHAR", "BIGINT"])
        fn("iqb_recover", lambda: json.dumps(marts.recover(self.root)), [])
        fn("iqb_discard", discard, ["VARCHAR"])
        fn(
            "iqb_staged_periods",
            lambda mart, inv: json.dumps(marts.staged_periods(self.root, mart, inv)),
            ["VARCHAR", "VARCHAR"],
        )
        fn(
            "iqb_published_files",
            lambda mart: json.dumps([str(p) for p in marts.published_files(self.root, mart)]),
            ["VARCHAR"],
        )
