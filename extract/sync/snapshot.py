"""The database snapshot a push publishes: what users query, as tables, in one file.

``read_only/iqb_<UTC>.duckdb`` holds every relation of the schema ``main`` of
the live ``iqb.duckdb`` materialised as a table, so it opens and answers on
another machine without ``marts/`` (the live file keeps views over those
files). A new one is written only when what users see changed since the last
(``state/snapshot.json`` keeps the fingerprint). The push that publishes it:
``push.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from extract.cache.hashindex import HashIndex
from extract.cache.store import atomic_path
from extract.paths import MARTS, ArtifactPaths, snapshot_key
from extract.sync.manifest import publishable_files
from extract.sync.remote import SyncError


def _open_read_only(db: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with ``db`` attached read-only under its own name.

    Attached read-only, the file also keeps any writer out until the connection
    is closed; under its own name (``iqb``), the views that dbt wrote with
    qualified names resolve.
    """
    wal = db.with_name(db.name + ".wal")
    try:
        if wal.exists():  # a writer died before its checkpoint: fold the WAL in first
            duckdb.connect(str(db)).execute("CHECKPOINT").close()
        con = duckdb.connect(config={"autoinstall_known_extensions": False})
        con.execute(f"ATTACH {_literal(db)} AS {_identifier(db.stem)} (READ_ONLY)")
    except duckdb.Error as exc:  # the lock of a writer, or a writer in this very process
        raise SyncError(
            f"{db} is open for writing by another process (dbt?); wait for it "
            f"to finish and push again ({str(exc).splitlines()[0]})"
        ) from None
    if wal.exists():
        con.close()
        raise SyncError(
            f"{db} has an unmerged write-ahead log {wal.name}; open and close it "
            "once (duckdb CLI) and push again"
        )
    return con


def _literal(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _published_relations(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str]]:
    """(name, VIEW or BASE TABLE) of what users query: the ``main`` schema only."""
    return con.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_catalog = ? and table_schema = 'main' order by table_name",
        [catalog],
    ).fetchall()


def _state_fingerprint(
    con: duckdb.DuckDBPyConnection, catalog: str, artifacts: Path, index: HashIndex
) -> str:
    """What the published relations show: definitions, contents, comments, mart files.

    The live file changes on every build (views are re-created), so its bytes
    would make a new snapshot each time; this changes only when the data does.
    """
    digest = hashlib.sha256()
    for name, kind in _published_relations(con, catalog):
        qualified = f"{_identifier(catalog)}.main.{_identifier(name)}"
        if kind == "VIEW":
            [(sql,)] = con.execute(
                "select sql from duckdb_views() where database_name = ? and schema_name = 'main' "
                "and view_name = ?",
                [catalog, name],
            ).fetchall()
        else:
            [(sql,)] = con.execute(
                f"select md5(coalesce(string_agg(t::varchar, '|' order by t::varchar), '')) "
                f"from {qualified} as t"
            ).fetchall()
        digest.update(f"{name}\0{kind}\0{sql}\0{_comments(con, catalog, name)}\0".encode())
    for key, path in publishable_files(artifacts).items():
        if key.startswith(MARTS + "/"):
            digest.update(f"{key}\0{index.sha256(key, path)}\0".encode())
    return digest.hexdigest()


def _copy_published(con: duckdb.DuckDBPyConnection, catalog: str, target: Path) -> None:
    con.execute(f"ATTACH {_literal(target)} AS snapshot")
    for name, _ in _published_relations(con, catalog):
        copy = f"snapshot.main.{_identifier(name)}"
        con.execute(
            f"CREATE TABLE {copy} AS SELECT * FROM {_identifier(catalog)}.main.{_identifier(name)}"
        )
        _copy_comments(con, catalog, name, copy)
    con.execute("DETACH snapshot")


def _comments(
    con: duckdb.DuckDBPyConnection, catalog: str, name: str
) -> list[tuple[str | None, str]]:
    """(column, or None for the relation itself; its comment) of relation ``name`` in ``main``."""
    where = "database_name = ? and schema_name = 'main' and {} = ? and comment is not null"
    return con.execute(
        f"select null, comment from duckdb_views() where {where.format('view_name')} union all "
        f"select null, comment from duckdb_tables() where {where.format('table_name')} union all "
        f"select column_name, comment from duckdb_columns() where {where.format('table_name')} "
        "order by 1 nulls first",
        [catalog, name] * 3,
    ).fetchall()


def _copy_comments(con: duckdb.DuckDBPyConnection, catalog: str, name: str, copy: str) -> None:
    """The descriptions of relation ``name`` and its columns, onto the table ``copy``.

    CREATE TABLE AS copies rows, not comments, and a snapshot's reader has
    nothing else to learn what a column means.
    """
    for column, comment in _comments(con, catalog, name):
        target = f"TABLE {copy}" if column is None else f"COLUMN {copy}.{_identifier(column)}"
        con.execute(f"COMMENT ON {target} IS {_literal(comment)}")


def materialise_published(db: Path, target: Path) -> None:
    """Write ``target``: what ``db`` shows in ``main``, every relation as a table."""
    con = _open_read_only(db)
    try:
        _copy_published(con, db.stem, target)
    finally:
        con.close()


def snapshot_database(
    artifacts: Path,
    index: HashIndex,
    dry_run: bool,
    check: Callable[[duckdb.DuckDBPyConnection, str], None] | None = None,
) -> str | None:
    """Write ``read_only/iqb_{UTC}.duckdb`` when what users see changed since the last one.

    The snapshot holds what users query (schema ``main``), every relation
    materialised as a table: it opens and answers on another machine without
    ``marts/`` (the working database keeps views over those files), and holds
    nothing of dbt's build schemas. It is taken while the live file is attached
    read-only, which keeps writers out: one consistent, published state.
    ``check(con, catalog)`` runs first, on the very connection the snapshot is
    copied from (push: does the report show this build?). Returns the new
    snapshot's key, if any.
    """
    paths = ArtifactPaths(artifacts)
    db = paths.database
    if not db.is_file():
        return None
    con = _open_read_only(db)
    try:
        catalog = db.stem
        if check is not None:
            check(con, catalog)
        fingerprint = _state_fingerprint(con, catalog, artifacts, index)
        state_path = paths.snapshot_state
        try:
            last = json.loads(state_path.read_text())
        except (OSError, ValueError):
            last = {}
        if (
            isinstance(last, dict)
            and last.get("fingerprint") == fingerprint
            and (artifacts / str(last.get("key"))).is_file()
        ):
            return None
        key = snapshot_key(datetime.now(UTC))
        if not dry_run:
            with atomic_path(artifacts / key) as tmp:
                tmp.unlink()  # DuckDB creates the file itself
                _copy_published(con, catalog, tmp)
            with atomic_path(state_path) as tmp:
                tmp.write_text(json.dumps({"key": key, "fingerprint": fingerprint}) + "\n")
        return key
    finally:
        con.close()
