"""Publishing a committed build: a new ``iqb.duckdb``, switched in with one rename.

``marts.commit`` writes the ``COMMIT`` record (what to publish) and calls
:func:`finish`, which ``marts.recover`` also calls for a build killed after its
record was written. Every step can be repeated after a kill:

(b) a new database is written at ``state/publish/<build>/iqb.duckdb`` (same file
    system, same file name, so its catalog is ``iqb`` as in dbt's working
    database and dbt's compiled SQL, ``"iqb"."main".x``, means the same
    relation in it). It holds only what researchers query, in ``main``: each
    quality mart as a view over its build files, the seeds, every view model
    (the score views) with its compiled SQL, the YAML descriptions as comments,
    and the one-row table ``iqb_build``;
(c) ``os.replace`` of that file onto ``<artifacts>/iqb.duckdb``: readers see the
    old database or the new one, never a mix (a shell holding the old file keeps
    its inode, and the old build's files stay until two builds later);
(d) the public names ``marts/<mart>/period=.../data_0.parquet`` (the bucket's
    layout) are pointed at the new files: a hard link renamed over each (a copy
    where hard links fail);
(e) build folders that neither the new nor the previous database reads are removed.

``IQB_PUBLISH_PAUSE_AT=<step>`` (``committed``, ``written``, ``switched``,
``linked``) makes the process stop at that step and wait, so that a test can
kill it there for real: a kill at one precise instant cannot be timed otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import duckdb

from extract.cache.store import atomic_path
from extract.paths import (
    COMMIT_FILE,
    DATABASE,
    MART_PERIOD_GLOB,
    OLD_MART_STAGING,
    ArtifactPaths,
)

PAUSE_ENV = "IQB_PUBLISH_PAUSE_AT"
BUILD_TABLE = "iqb_build"
BUILD_COLUMNS = {
    "build_id": ("VARCHAR", "dbt's invocation id of the build published here"),
    "built_at": ("TIMESTAMP WITH TIME ZONE", "when the build was committed for publishing"),
    "git_commit": ("VARCHAR", "the commit of the dbt project that built it (NULL when unknown)"),
    "min_sample_count": ("INTEGER", "the var min_sample_count of the build"),
    "iqb_percentile": ("INTEGER", "the var iqb_percentile the score views compare"),
}


def load_published(artifacts: Path) -> dict[str, Any]:
    """The published build's record (``state/dbt/published.json``); empty before the first."""
    try:
        record = json.loads(ArtifactPaths(artifacts).published_record.read_text())
    except (OSError, ValueError):
        return {"marts": {}, "previous": {}}
    return record if isinstance(record, dict) else {"marts": {}, "previous": {}}


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the directory entry itself)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pause(artifacts: Path, build: str, step: str) -> None:
    """Stop here when the environment asks for it (tests kill the process then)."""
    if os.environ.get(PAUSE_ENV) != step:
        return
    marker = ArtifactPaths(artifacts).publish_folder(build) / f"PAUSED-{step}"
    marker.write_text(str(os.getpid()))
    while True:
        time.sleep(60)


def git_commit(project_dir: Path) -> str | None:
    """The commit checked out where the dbt project is, or None (not a checkout, no git)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _literal(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _name(name: str) -> str:
    return 'main."' + name.replace('"', '""') + '"'


def _comments(kind: str, relation: dict[str, Any]) -> list[str]:
    """COMMENT statements for ``relation``'s YAML descriptions (a re-created relation
    has none of what dbt's persist_docs wrote in the working database)."""
    name = _name(relation["name"])
    docs = relation.get("docs", {})
    statements = []
    if docs.get("description"):
        statements.append(f"COMMENT ON {kind} {name} IS {_literal(docs['description'])}")
    for column, text in docs.get("columns", {}).items():
        quoted = '"' + column.replace('"', '""') + '"'
        statements.append(f"COMMENT ON COLUMN {name}.{quoted} IS {_literal(text)}")
    return statements


class _Writer:
    """The statements that fill a new published database, relation by relation."""

    def __init__(self, con: duckdb.DuckDBPyConnection, artifacts: Path, previous: Path) -> None:
        self.con, self.artifacts, self.previous = con, artifacts, previous
        self.attached = False

    def _previous(self, query: str) -> list[tuple[Any, ...]]:
        """Rows from the database being replaced (for what this build did not rebuild).

        Literals, not parameters: DuckDB's Python client imports pandas (seconds) to
        bind a parameter, and dbt's process has not imported it."""
        if not self.previous.is_file():
            return []
        if not self.attached:
            self.con.execute(f"ATTACH {_literal(self.previous)} AS previous (READ_ONLY)")
            self.attached = True
        return self.con.execute(query).fetchall()

    def _has_previous(self, name: str) -> bool:
        return bool(
            self._previous(
                "select 1 from information_schema.tables where table_catalog = 'previous' "
                f"and table_schema = 'main' and table_name = {_literal(name)}"
            )
        )

    def mart(self, relation: dict[str, Any], files: dict[str, str]) -> str | None:
        name = _name(relation["name"])
        if files:
            paths = ", ".join(_literal(self.artifacts / files[k]) for k in sorted(files))
            # hive_partitioning off: DuckDB would add the folder name period=... as a column
            self.con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{paths}], "
                "hive_partitioning = false)"
            )
            return "VIEW"
        return self.table(relation)  # no period: an empty table of its columns

    def table(self, relation: dict[str, Any]) -> str | None:
        name = _name(relation["name"])
        if relation.get("source"):
            self.con.execute(
                f"CREATE TABLE {name} AS SELECT * FROM read_parquet({_literal(relation['source'])})"
            )
        elif self._has_previous(relation["name"]):
            self.con.execute(f"CREATE TABLE {name} AS SELECT * FROM previous.{name}")
        else:
            return None
        return "TABLE"

    def view(self, relation: dict[str, Any]) -> str | None:
        if relation.get("sql"):
            self.con.execute(f"CREATE VIEW {_name(relation['name'])} AS {relation['sql']}")
            return "VIEW"
        rows = self._previous(
            "select sql from duckdb_views() where database_name = 'previous' "
            f"and schema_name = 'main' and view_name = {_literal(relation['name'])}"
        )
        if not rows:
            return None
        self.con.execute(rows[0][0])  # DuckDB's own CREATE VIEW text of the published view
        return "VIEW"


def write_database(target: Path, record: dict[str, Any], artifacts: Path) -> list[str]:
    """The published database of ``record`` at ``target`` (a new file); returns the
    relations it holds (one never built nor published before is left out)."""
    relations = {r["name"]: r for r in record["relations"]}
    order = TopologicalSorter(
        {n: [d for d in r.get("depends_on", []) if d in relations] for n, r in relations.items()}
    ).static_order()
    con = duckdb.connect(str(target), config={"autoinstall_known_extensions": False})
    created = []
    try:
        writer = _Writer(con, artifacts, ArtifactPaths(artifacts).database)
        for name in order:
            relation = relations[name]
            if relation["kind"] == "mart":
                kind = writer.mart(relation, record["marts"].get(name, {}))
            elif relation["kind"] == "seed":
                kind = writer.table(relation)
            else:
                kind = writer.view(relation)
            if kind:
                created.append(name)
            for statement in _comments(kind, relation) if kind else []:
                con.execute(statement)
        if writer.attached:
            con.execute("DETACH previous")
        build = record["build"]
        columns = ", ".join(f"{c} {t}" for c, (t, _) in BUILD_COLUMNS.items())
        con.execute(f"CREATE TABLE {_name(BUILD_TABLE)} ({columns})")
        values = ", ".join(
            "NULL" if build[c] is None else _literal(str(build[c])) for c in BUILD_COLUMNS
        )
        con.execute(f"INSERT INTO {_name(BUILD_TABLE)} VALUES ({values})")  # cast by the columns
        docs = {
            "description": "The build published in this database (one row).",
            "columns": {c: text for c, (_, text) in BUILD_COLUMNS.items()},
        }
        for statement in _comments("TABLE", {"name": BUILD_TABLE, "docs": docs}):
            con.execute(statement)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return sorted(created)


def link_public(artifacts: Path, marts: dict[str, dict[str, str]]) -> None:
    """Point ``marts/<mart>/period=.../data_0.parquet`` at the published build's files."""
    paths = ArtifactPaths(artifacts)
    for mart, files in marts.items():
        wanted = set()
        for rel in files.values():
            source = artifacts / rel
            public = paths.marts / mart / source.parent.name / source.name
            wanted.add(public.parent.name)
            if public.exists() and os.path.samefile(public, source):
                continue
            public.parent.mkdir(parents=True, exist_ok=True)
            tmp = public.with_name(f".{public.name}.link")
            tmp.unlink(missing_ok=True)
            try:
                os.link(source, tmp)
            except OSError:  # a file system without hard links: a copy, renamed into place
                shutil.copyfile(source, tmp)
            os.replace(tmp, public)
        folder = paths.marts / mart
        for old in folder.glob(MART_PERIOD_GLOB) if folder.is_dir() else []:
            if old.name not in wanted:  # a period that left the cache
                shutil.rmtree(old, ignore_errors=True)


def collect(artifacts: Path) -> None:
    """Remove build folders that neither the published nor the previous database
    reads, and that no pending publish (a COMMIT record) will."""
    paths = ArtifactPaths(artifacts)
    record = load_published(artifacts)
    keep = {
        Path(rel).relative_to(paths.mart_builds.relative_to(artifacts)).parts[0]
        for key in ("marts", "previous")
        for files in record.get(key, {}).values()
        for rel in files.values()
    }
    if paths.publishing.is_dir():
        keep |= {p.parent.name for p in paths.publishing.glob(f"*/{COMMIT_FILE}")}
    for folder in paths.mart_builds.iterdir() if paths.mart_builds.is_dir() else []:
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(paths.root / OLD_MART_STAGING, ignore_errors=True)


def finish(artifacts: Path, record: dict[str, Any]) -> None:
    """Steps (b) to (e) of a committed build; safe to repeat after a kill at any point."""
    paths = ArtifactPaths(artifacts)
    build = record["build"]["build_id"]
    work = paths.publish_folder(build)
    pause(artifacts, build, "committed")
    new = work / DATABASE
    for leftover in (new, new.with_name(DATABASE + ".wal")):
        leftover.unlink(missing_ok=True)
    created = write_database(new, record, artifacts)
    pause(artifacts, build, "written")
    # a write-ahead log beside the old file belongs to it, never to the new one
    paths.database.with_name(DATABASE + ".wal").unlink(missing_ok=True)
    os.replace(new, paths.database)
    fsync_dir(paths.root)
    pause(artifacts, build, "switched")
    published = {
        "build": build,
        "root": str(artifacts),  # a copied folder's database still reads the original's files
        "project": record["project"],
        "marts": record["marts"],
        "fingerprints": record.get("fingerprints", {}),
        "previous": record["previous"],
        "relations": created,
    }
    with atomic_path(paths.published_record) as tmp:
        tmp.write_text(json.dumps(published, indent=1))
    link_public(artifacts, record["marts"])
    pause(artifacts, build, "linked")
    shutil.rmtree(work, ignore_errors=True)
    collect(artifacts)
