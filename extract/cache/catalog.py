"""What the cache holds, entry by entry, and whether each file is what its record says.

dbt reads the cache through this list (``extract/transform/dbt_plugin.py``), never through a
glob, so a truncated file, one of our entries copied under another period's key
(its ``stats.json`` names its period), or a data file without its ``stats.json``
(a writer killed half-way) is never read as data. Upstream's ``stats.json``
names no period and no hash: such an entry stays *unverified* until a pull
checks it against a manifest (where its key has a hash), and dbt builds it
with a warning.

An entry is
- **present**: ``stats.json`` records the size and SHA-256 of ``data.parquet``,
  plus the dataset and period, and the file matches that record;
- **present** too: ``stats.json`` is upstream's (no size/hash), and a record under
  ``state/verified/`` (made by ``cache pull`` against the manifest, or by
  ``cache verify``) holds the file's hash, and the file matches it;
- **unverified**: ``stats.json`` is upstream's, no such record exists, and the
  file is readable Parquet with the dataset's columns: usable, listed as such;
- **corrupt**: anything else, with the reason; also a folder whose period is not
  a calendar month that has begun (``extract/months.py``): built, it would be
  published and shown as the latest period.

The SHA-256 is also the entry's fingerprint: dbt re-processes a period when a
fingerprint of one of its entries differs from the one recorded with the marts.
The cheap check reuses the hash index (size, mtime, inode): unchanged files are
not re-read; ``full=True`` (``iqb cache verify``) re-reads every byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from extract.cache import verified
from extract.cache.hashindex import HashIndex
from extract.cache.layout import DATA_FILE, STATS_FILE, Entry, cache_key_period
from extract.paths import ArtifactPaths


class Integrity(StrEnum):
    PRESENT = "present"
    UNVERIFIED = "unverified"
    CORRUPT = "corrupt"


# stats.json "source.kind": where the rows came from. Synthetic data never passes for real.
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class CatalogEntry:
    entry: Entry
    integrity: Integrity
    reason: str
    sha256: str | None
    source_kind: str

    @property
    def readable(self) -> bool:
        return self.integrity != Integrity.CORRUPT


def _read_stats(path: Path) -> tuple[dict[str, Any] | None, bytes, str]:
    """The stats.json object and its bytes, or None and why not (missing, not JSON, ...)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, b"", f"{STATS_FILE} is missing"
    except OSError as exc:
        return None, b"", f"{STATS_FILE} is unreadable ({exc.strerror or exc})"
    try:
        doc = json.loads(raw)
    except ValueError:  # also a UnicodeDecodeError
        return None, raw, f"{STATS_FILE} is not valid JSON"
    if not isinstance(doc, dict):
        return None, raw, f"{STATS_FILE} is not a JSON object (it holds a {type(doc).__name__})"
    return doc, raw, ""


def source_kind(stats: dict[str, Any]) -> str:
    """``source.kind`` of our entries; upstream's entries came from M-Lab's BigQuery."""
    source = stats.get("source")
    if isinstance(source, dict) and isinstance(source.get("kind"), str):
        return source["kind"]
    return "upstream"


def _path_mismatch(entry: Entry, stats: dict[str, Any]) -> str:
    """Why ``stats`` names another dataset or period than the entry's path, or ''.

    An entry copied under another period's key must not be read as that period.
    """
    for field, want in (
        ("dataset", entry.dataset.name),
        ("period_start", entry.start.isoformat()),
        ("period_end", entry.end.isoformat()),
    ):
        if field in stats and stats[field] != want:
            return f"{STATS_FILE} says {field} {stats[field]!r}, the path says {want!r}"
    return ""


def _recorded_hash(
    entry: Entry, artifacts: Path, stats: dict[str, Any], stats_bytes: bytes
) -> tuple[Any, Any, str]:
    """The SHA-256 and size the file must have, and where they are recorded.

    ``stats.json`` first; for upstream's format (no hash), a record under
    ``state/verified/`` of those exact ``stats.json`` bytes. The hash is not a
    ``str`` when neither records one.
    """
    recorded_sha, recorded_size, where = stats.get("sha256"), stats.get("size"), STATS_FILE
    if not isinstance(recorded_sha, str):
        record = verified.lookup(entry, artifacts, stats_bytes)
        if record is not None:
            recorded_sha, recorded_size = record["sha256"], record.get("size")
            where = f"the record of {record.get('verified_by', 'a verification')}"
    return recorded_sha, recorded_size, where


def check_entry(
    entry: Entry, artifacts: Path, index: HashIndex | None = None, full: bool = False
) -> CatalogEntry:
    """Compare an entry's data file with its stats.json record (see the module doc).

    ``full`` re-reads the data file even when the hash index knows it.
    """
    data = entry.data_path(artifacts)
    stats, stats_bytes, why = _read_stats(entry.stats_path(artifacts))

    def corrupt(reason: str, kind: str = "unknown") -> CatalogEntry:
        return CatalogEntry(entry, Integrity.CORRUPT, reason, None, kind)

    if stats is None:
        return corrupt(why)
    kind = source_kind(stats)
    if not data.is_file():
        return corrupt(f"{DATA_FILE} is missing", kind)
    mismatch = _path_mismatch(entry, stats)
    if mismatch:
        return corrupt(mismatch, kind)
    index = index or HashIndex(artifacts)
    key = f"{entry.key}/{DATA_FILE}"
    try:
        size = data.stat().st_size
        recorded_sha, recorded_size, where = _recorded_hash(entry, artifacts, stats, stats_bytes)
        if isinstance(recorded_sha, str):
            if recorded_size is not None and recorded_size != size:
                return corrupt(
                    f"{DATA_FILE} has {size} bytes, {where} records {recorded_size}"
                    " (truncated or replaced)",
                    kind,
                )
            sha = index.rehash(key, data) if full else index.sha256(key, data)
            if sha != recorded_sha:
                return corrupt(f"{DATA_FILE} does not match the SHA-256 in {where}", kind)
            return CatalogEntry(entry, Integrity.PRESENT, "", sha, kind)
        problem = schema_problem(entry, data)
        if problem:
            return corrupt(problem, kind)
        sha = index.rehash(key, data) if full else index.sha256(key, data)
    except OSError as exc:
        return corrupt(f"{DATA_FILE} is unreadable ({exc.strerror or exc})", kind)
    return CatalogEntry(
        entry,
        Integrity.UNVERIFIED,
        f"{STATS_FILE} records no SHA-256 (upstream's format); `iqb cache verify` records it",
        sha,
        kind,
    )


def schema_problem(entry: Entry, data: Path) -> str:
    """Why ``data`` is not readable Parquet with the dataset's columns, or ''."""
    try:
        schema = pq.read_schema(data)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        return f"{DATA_FILE} is not readable Parquet ({exc})"
    missing = [f.name for f in entry.dataset.schema if f.name not in schema.names]
    if missing:
        return f"{DATA_FILE} lacks the dataset's columns {missing}"
    return ""


def refused_entry(entry: Entry, artifacts: Path, problem: str) -> CatalogEntry:
    """A folder whose period no pipeline.yaml, pull or push accepts (extract/months.py):
    corrupt, so that ``dbt build`` stops instead of publishing it as the latest period."""
    return CatalogEntry(
        entry,
        Integrity.CORRUPT,
        f"period {problem}; only calendar months that have begun are built: "
        f"remove the folder {entry.dir(artifacts)}",
        None,
        "unknown",
    )


def scan(artifacts: Path, full: bool = False) -> list[CatalogEntry]:
    """Every entry directory under the cache, checked; sorted by dataset and period.

    ``full`` re-reads every data file instead of trusting the hash index.
    """
    root = ArtifactPaths(artifacts).cache
    index = HashIndex(artifacts)
    found: list[CatalogEntry] = []
    for directory in sorted(root.glob("*/*/*")):
        if not directory.is_dir():
            continue
        parsed = cache_key_period(f"{directory.relative_to(artifacts).as_posix()}/{DATA_FILE}")
        if parsed is None:
            continue
        entry, _, refused = parsed
        if not (entry.data_path(artifacts).exists() or entry.stats_path(artifacts).exists()):
            continue
        if refused is not None:
            found.append(refused_entry(entry, artifacts, refused))
            continue
        found.append(check_entry(entry, artifacts, index, full))
    index.save()  # a read-only tree: not saved, the index is only a cache
    found.sort(key=lambda c: (c.entry.dataset.name, c.entry.start, c.entry.end))
    return found
