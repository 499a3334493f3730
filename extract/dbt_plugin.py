"""dbt-duckdb plugin: the few things dbt's SQL and Jinja cannot do, as DuckDB functions.

``profiles/profiles.yml`` loads it. Each function returns JSON text (Jinja reads
it with ``fromjson``) and is called from the macros of ``dbt_project/``:

- ``iqb_root()``: the absolute artifacts root (the database's folder), so no
  view ever stores a path relative to where dbt happened to run;
- ``iqb_check_cache()`` / ``iqb_cache_files(dataset)``: the cache's readable
  entries (``extract/cache/catalog.py``), never a glob;
- ``iqb_plan`` / ``iqb_commit`` / ``iqb_recover`` / ``iqb_discard`` /
  ``iqb_published_files``: write-audit-publish of the marts (``extract/marts.py``).

Python stays here and in the modules it calls; the SQL stays in the macros.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from extract import marts
from extract.cache.catalog import CatalogEntry, scan
from extract.cache.layout import CACHE_VERSION_DIR


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        path = self.creds.path if self.creds is not None else "iqb.duckdb"
        self.root = Path(os.path.abspath(path)).parent
        self.entries: list[CatalogEntry] | None = None

    def _entries(self) -> list[CatalogEntry]:
        if self.entries is None:
            self.entries = scan(self.root)
        return self.entries

    def check_cache(self) -> str:
        """Scan the cache afresh (once per invocation, from on-run-start)."""
        self.entries = scan(self.root)
        return json.dumps({
            "cache": str(self.root / CACHE_VERSION_DIR),
            "readable": sum(c.readable for c in self.entries),
            "corrupt": [{"key": c.entry.key, "reason": c.reason}
                        for c in marts.corrupt_entries(self.entries)],
        })

    def cache_files(self, dataset: str) -> str:
        return json.dumps([str(c.entry.data_path(self.root)) for c in self._entries()
                           if c.readable and c.entry.dataset.name == dataset])

    def plan(self, mart: str, datasets: str, code_hash: str, min_sample_count: int,
             full_refresh: bool, invocation: str) -> str:
        return json.dumps(marts.plan_mart(self.root, invocation, mart, datasets.split(","),
                                          code_hash, min_sample_count, full_refresh,
                                          self._entries()))

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        def fn(name: str, func: Any, params: list[str]) -> None:
            conn.create_function(name, func, params, "VARCHAR", side_effects=True)

        fn("iqb_root", lambda: str(self.root), [])
        fn("iqb_check_cache", self.check_cache, [])
        fn("iqb_cache_files", self.cache_files, ["VARCHAR"])
        fn("iqb_plan", self.plan,
           ["VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BOOLEAN", "VARCHAR"])
        fn("iqb_commit", lambda inv: json.dumps(marts.commit(self.root, inv)), ["VARCHAR"])
        fn("iqb_recover", lambda: json.dumps(marts.recover(self.root)), [])
        fn("iqb_discard", lambda inv: marts.discard(self.root, inv) or "ok", ["VARCHAR"])
        fn("iqb_published_files",
           lambda mart: json.dumps([str(p) for p in marts.published_files(self.root, mart)]),
           ["VARCHAR"])
