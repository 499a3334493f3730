"""Writing and reading cache entries so that no reader ever sees half of one.

Data and stats are written to hidden temp files in the entry's own directory and
moved into place with ``os.replace`` (atomic on one filesystem); ``stats.json``
goes last, so an entry counts as present only when both files exist. Writers of
one entry are serialised by a lock file under ``state/locks/``, which keeps the
cache tree itself free of anything but data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extract.cache.layout import Entry, parse_cache_key
from extract.cache.templates import template_hash, template_text
from extract.datasets import SCHEMA_VERSION
from extract.paths import WRITTEN_TREES, ArtifactPaths

__all__ = ["read_stats", "template_hash", "template_text", "write_entry"]

TMP_SUFFIX = ".tmp"
_UMASK = os.umask(0)
os.umask(_UMASK)


def read_stats(entry: Entry, artifacts: Path) -> dict[str, Any] | None:
    """The entry's stats.json object, or None if it is missing, unreadable or not an object."""
    path = entry.stats_path(artifacts)
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


# How long a writer (the extractor, a pull) waits for another writer of the same
# entry or file before it gives up on it: the one timeout of every blocking lock.
LOCK_TIMEOUT = 600.0


def lock_for(entry: Entry, artifacts: Path, timeout: float = -1) -> filelock.FileLock:
    locks = ArtifactPaths(artifacts).locks
    locks.mkdir(parents=True, exist_ok=True)
    name = f"{entry.dataset.name}.{entry.start:%Y%m%d}.{entry.end:%Y%m%d}.lock"
    return filelock.FileLock(str(locks / name), timeout=timeout)


def lock_for_file(final: Path, artifacts: Path, timeout: float = -1) -> filelock.FileLock:
    """The lock of one file outside the cache entries (marts, snapshots), by its path."""
    locks = ArtifactPaths(artifacts).locks
    locks.mkdir(parents=True, exist_ok=True)
    rel = final.relative_to(artifacts).as_posix()
    digest = hashlib.sha256(rel.encode()).hexdigest()[:16]
    return filelock.FileLock(str(locks / f"file.{final.name}.{digest}.lock"), timeout=timeout)


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a hidden temp path beside ``final``; move it into place only on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent)
    # mkstemp makes the file 0600; a cache shared by a team must be readable as
    # any other new file would be (0666 less the umask).
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    except OSError as exc:
        if exc.filename or exc.errno is None:
            raise
        # pyarrow's writer reports ENOSPC without a file name: name the file being written
        raise OSError(exc.errno, os.strerror(exc.errno), str(final)) from exc
    finally:
        tmp_path.unlink(missing_ok=True)


def remove_leftovers(directory: Path, name: str = "") -> None:
    """Delete temp files of writers that died (call only while holding their lock).

    ``name``: only the temp files of that final file name (a folder of several files).
    """
    if directory.is_dir():
        for leftover in directory.glob(f".{name}*{TMP_SUFFIX}" if name else f".*{TMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)


def final_name(tmp: Path) -> str:
    """``.data.parquet.ab12cd34.tmp`` (from :func:`atomic_path`) -> ``data.parquet``."""
    return tmp.name[1:].removesuffix(TMP_SUFFIX).rsplit(".", 1)[0]


def sweep_leftovers(artifacts: Path, trees: tuple[str, ...] = WRITTEN_TREES) -> int:
    """Remove temp files that dead writers left anywhere under ``trees``; return how many.

    Each is removed only if its lock is free (the entry's in the cache, the file's
    elsewhere): a writer running right now holds it, and keeps its file.
    """
    removed = 0
    for tree in trees:
        top = artifacts / tree
        if not top.is_dir():
            continue
        for tmp in sorted(top.rglob(f".*{TMP_SUFFIX}")):
            final = tmp.with_name(final_name(tmp))
            parsed = parse_cache_key(final.relative_to(artifacts).as_posix())
            lock = (
                lock_for(parsed[0], artifacts, timeout=0)
                if parsed
                else lock_for_file(final, artifacts, timeout=0)
            )
            try:
                with lock:
                    tmp.unlink(missing_ok=True)
                    removed += 1
            except filelock.Timeout:
                continue
    return removed


def conform(batch: pa.RecordBatch, schema: pa.Schema, dataset: str) -> pa.RecordBatch:
    """Select and cast the result's columns to the dataset schema, or say what is wrong."""
    missing = [f.name for f in schema if f.name not in batch.schema.names]
    extra = [n for n in batch.schema.names if n not in schema.names]
    if missing or extra:
        raise ValueError(
            f"{dataset}: query result does not match the dataset schema "
            f"(missing: {missing or 'none'}; unexpected: {extra or 'none'})"
        )
    columns = [batch.column(f.name).cast(f.type) for f in schema]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


# The templates' count of measurements left out as NaN, infinite or out of range, per
# place; the writer adds it up into stats.json (LEFT_OUT_STAT) and never stores the column.
LEFT_OUT_COLUMN = "left_out_count"
LEFT_OUT_STAT = "left_out_invalid"


def split_left_out(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int | None]:
    """The batch without the templates' ``left_out_count`` column, and its sum.

    A place whose measurements were all left out has a ``sample_count`` of 0 and
    no percentile: it is dropped, as the filter it replaces dropped it, so the rows
    are the same as a query that left them out before grouping. None: the result
    has no such column (an engine or query that does not count).
    """
    if LEFT_OUT_COLUMN not in batch.schema.names:
        return batch, None
    total = pc.sum(batch.column(LEFT_OUT_COLUMN)).as_py() or 0
    kept = batch.select([n for n in batch.schema.names if n != LEFT_OUT_COLUMN])
    if "sample_count" in kept.schema.names:
        kept = kept.filter(pc.greater(kept.column("sample_count"), 0))
    return kept, int(total)


@dataclass
class WriteResult:
    rows: int
    bytes: int
    seconds: float
    stats: dict[str, Any]


def write_entry(
    entry: Entry,
    artifacts: Path,
    batches: Iterator[pa.RecordBatch],
    engine_stats: dict[str, Any],
    engine: str,
    started: datetime | None = None,
) -> WriteResult:
    """Stream batches into the entry's data.parquet, then write its stats.json.

    The caller holds the entry lock and passes ``started``, taken before the
    engine ran, so the duration covers the query. Memory stays at one batch:
    each is cast and written before the next is pulled.
    """
    started = started or datetime.now(UTC)
    schema = entry.dataset.schema
    rows = 0
    left_out: int | None = None
    data_path = entry.data_path(artifacts)
    with atomic_path(data_path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for raw in batches:
            batch, dropped = split_left_out(raw)
            if dropped is not None:
                left_out = (left_out or 0) + dropped
            if batch.num_rows:
                writer.write_batch(conform(batch, schema, entry.dataset.name))
                rows += batch.num_rows
    seconds = (datetime.now(UTC) - started).total_seconds()
    with open(data_path, "rb") as fh:
        sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    stats = {
        "query_start_time": started.isoformat().replace("+00:00", "Z"),
        "query_duration_seconds": round(seconds, 3),
        "template_hash": template_hash(entry.dataset),
        "total_bytes_processed": int(engine_stats.get("total_bytes_processed") or 0),
        "total_bytes_billed": int(engine_stats.get("total_bytes_billed") or 0),
        **{
            k: v
            for k, v in engine_stats.items()
            if k not in ("total_bytes_processed", "total_bytes_billed")
        },
        "rows": rows,
        # measurements left out as NaN, infinite or out of range (absent: not counted)
        **({LEFT_OUT_STAT: left_out} if left_out is not None else {}),
        "engine": engine,
        "schema_version": SCHEMA_VERSION,
        "dataset": entry.dataset.name,
        "period_start": entry.start.isoformat(),
        "period_end": entry.end.isoformat(),
        # what the data file must be for the entry to count as present (catalog.py)
        "size": data_path.stat().st_size,
        "sha256": sha256,
    }
    with atomic_path(entry.stats_path(artifacts)) as tmp:
        tmp.write_text(json.dumps(stats, indent=2) + "\n")
    return WriteResult(rows, data_path.stat().st_size, seconds, stats)
