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
- ``iqb_begin`` / ``iqb_plan`` / ``iqb_nothing_new`` / ``iqb_publish`` / ``iqb_discard`` /
  ``iqb_published_files``: write-audit-publish of the marts (``extract/transform/marts.py``,
  ``extract/transform/publish.py``);
- ``iqb_tested_from(what)``: the first period the data tests of a build read.

It also holds a lock on the artifacts root for the whole dbt invocation (two
builds at once would write the same files), and turns a read-only disk or a
working database held by another process into one message.

Python stays here and in the modules it calls; the SQL stays in the macros.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import duckdb
import filelock
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.flags import get_flags
from dbt_common.exceptions import DbtRuntimeError
from duckdb import DuckDBPyConnection
from duckdb.func import SPECIAL

from extract.cache.catalog import CatalogEntry, Integrity, scan
from extract.cache.layout import PERIOD_SQL_RE
from extract.paths import WORKING_DATABASE, ArtifactPaths
from extract.transform import marts
from extract.transform.publish import load_published

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


_LOCKS: dict[Path, filelock.FileLock] = {}


def project_dir() -> Path:
    """The dbt project's folder: --project-dir, else the working directory (as dbt does);
    dbt's Jinja does not expose it."""
    return Path(os.path.abspath(getattr(get_flags(), "PROJECT_DIR", None) or os.getcwd()))


def _refuse(message: str) -> NoReturn:
    """Stop dbt with one readable message and no traceback (dbt prints a runtime
    error's text as it is; the plugin runs before dbt has anything to clean up)."""
    raise DbtRuntimeError(message)


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        # The profile names dbt's working database; the artifacts root is found from it
        # (a path not named as extract/paths.py says is refused: Python would not find it).
        self.paths = ArtifactPaths.of_working_database(
            self.creds.path if self.creds is not None else WORKING_DATABASE
        )
        self.root = self.paths.root
        self.entries: list[CatalogEntry] | None = None
        self.build: str | None = None  # this invocation, once on-run-start says it builds
        self.project = ""
        self.lock = self._lock()
        set_aside_if_damaged(self.paths.working_database)
        self._check_not_held()

    def _lock(self) -> filelock.FileLock:
        """One dbt invocation per artifacts root at a time, held until the process ends
        (kept per path: dbt may set up its adapter, and so this plugin, twice)."""
        if self.paths.build_lock in _LOCKS:
            return _LOCKS[self.paths.build_lock]
        try:
            self.paths.working_database.parent.mkdir(parents=True, exist_ok=True)
            self.paths.build_lock.parent.mkdir(parents=True, exist_ok=True)
            lock = filelock.FileLock(str(self.paths.build_lock), timeout=0)
            lock.acquire()
            _LOCKS[self.paths.build_lock] = lock
        except filelock.Timeout:
            _refuse(
                f"iqb: another dbt command is running on {self.root} (it holds "
                f"{self.paths.build_lock}); wait for it to finish, then run this one again"
            )
        except OSError as exc:
            _refuse(
                f"iqb: cannot write under {self.root}: {exc.strerror} ({exc.filename}). "
                "dbt writes its working database, the marts and the published database "
                "there: make the folder writable, or set IQB_ARTIFACTS to a writable copy"
            )
        return lock

    def _check_not_held(self) -> None:
        """Another process (a duckdb shell, a notebook) holding dbt's working file."""
        if not self.paths.working_database.is_file():
            return
        try:
            duckdb.connect(str(self.paths.working_database), read_only=True).close()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            holder = re.search(r"PID (\d+)", str(exc))
            _refuse(
                f"iqb: dbt's working database {self.paths.working_database} is held by "
                f"another process{f' (PID {holder[1]})' if holder else ''}; close it (it is "
                f"dbt's own file: researchers open {self.paths.database}), then build again"
            )

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

    def begin(self, build: str, settings: str) -> str:
        """on-run-start of a build: finish an interrupted publish, note what is built."""
        finished = marts.recover(self.root)
        self.build = build
        self.project = marts.project_fingerprint(project_dir(), settings)
        return json.dumps(finished)

    def plan(
        self,
        mart: str,
        datasets: str,
        code_hash: str,
        min_sample_count: int,
        full_refresh: bool,
        build: str,
        batch_bytes: int,
    ) -> str:
        return json.dumps(
            marts.plan_mart(
                self.root,
                build,
                mart,
                datasets.split(","),
                code_hash,
                min_sample_count,
                full_refresh,
                batch_bytes,
                self._entries(),
            )
        )

    def tested_from(self, what: str) -> str | None:
        """The first period_start the data tests of ``what`` (marts, scores) read.

        A build tests the periods it wrote (from the first of them on; None, no
        period, when it wrote none); the score views every period when the
        project (SQL, seeds, vars) changed since the published build; anything
        else (a standalone `dbt test`) every period.
        """
        if self.build is None:
            return "-infinity"
        if what == "scores" and self.project != load_published(self.root).get("project"):
            return "-infinity"
        return marts.tested_from(self.root, self.build)

    def publish(self, build: str, spec: str) -> str:
        try:
            return json.dumps(
                marts.commit(
                    self.root,
                    build,
                    {
                        **json.loads(spec),
                        "project": self.project,
                        "project_dir": str(project_dir()),
                    },
                )
            )
        except marts.PublishError as exc:
            return json.dumps({"error": str(exc)})
        except (OSError, duckdb.Error) as exc:
            return json.dumps(
                {
                    "error": f"publishing failed ({str(exc).splitlines()[0]}); the next "
                    "`dbt build` finishes it"
                }
            )

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        # params are DuckDB type names; list[Any] because create_function's list is invariant
        def fn(name: str, func: Any, params: list[Any], side_effects: bool = True) -> None:
            # SPECIAL: a function may answer NULL (iqb_tested_from)
            conn.create_function(
                name, func, params, "VARCHAR", side_effects=side_effects, null_handling=SPECIAL
            )

        def discard(build: str) -> str:
            marts.discard(self.root, build)
            return "{}"

        def publish_dir(build: str) -> str:
            folder = self.paths.publish_folder(build)
            folder.mkdir(parents=True, exist_ok=True)
            return json.dumps(str(folder))

        fn("iqb_root", lambda: str(self.root), [])
        fn("iqb_paths", self.paths_json, [])
        fn("iqb_check_cache", self.check_cache, [])
        fn("iqb_cache_files", self.cache_files, ["VARCHAR"])
        fn("iqb_begin", self.begin, ["VARCHAR", "VARCHAR"])
        fn(
            "iqb_plan",
            self.plan,
            ["VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BOOLEAN", "VARCHAR", "BIGINT"],
        )
        fn(
            "iqb_nothing_new",
            # the published build's id when this one brings nothing new, else null
            lambda build, built: json.dumps(
                load_published(self.root).get("build")
                if marts.nothing_new(self.root, build, json.loads(built), self.project)
                else None
            ),
            ["VARCHAR", "VARCHAR"],
        )
        fn("iqb_publish_dir", publish_dir, ["VARCHAR"])
        fn("iqb_publish", self.publish, ["VARCHAR", "VARCHAR"])
        fn("iqb_discard", discard, ["VARCHAR"])
        fn(
            "iqb_published_files",
            lambda mart: json.dumps([str(p) for p in marts.published_files(self.root, mart)]),
            ["VARCHAR"],
        )
        fn(
            "iqb_test_window",
            lambda: json.dumps({w: self.tested_from(w) for w in ("marts", "scores")}),
            [],
        )
        # Without side effects: DuckDB folds the call to a constant when it plans a
        # test's query, so the filter on period_start reaches the Parquet files'
        # statistics (the data tests' `where`, dbt_project.yml); NULL (no period)
        # makes the filter a constant that reads no file at all, not even a footer.
        fn("iqb_tested_from", self.tested_from, ["VARCHAR"], side_effects=False)
