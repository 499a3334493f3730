"""What the cache holds, entry by entry, and whether each file is what its record says.

dbt reads the cache through this list (``extract/dbt_plugin.py``), never through a
glob, so a truncated file, a file copied under another period's key, or a data
file without its ``stats.json`` (a writer killed half-way) is never read as data.

An entry is
- **present**: ``stats.json`` records the size and SHA-256 of ``data.parquet``,
  plus the dataset and period, and the file matches that record;
- **unverified**: ``stats.json`` is upstream's (no size/hash), and the file is
  readable Parquet with the dataset's columns: usable, listed as such;
- **corrupt**: anything else, with the reason.

The SHA-256 is also the entry's fingerprint: dbt re-processes a period when a
fingerprint of one of its entries differs from the one recorded with the marts.
The cheap check reuses the hash index (size, mtime): unchanged files are not re-read.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from extract.cache.hashindex import HashIndex
from extract.cache.layout import CACHE_VERSION_DIR, DATA_FILE, STATS_FILE, Entry, parse_cache_key


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


def read_stats_object(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The stats.json object, or None and why not (missing, not JSON, not an object)."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None, f"{STATS_FILE} is missing"
    except (OSError, ValueError) as exc:
        return None, f"{STATS_FILE} is unreadable ({exc.__class__.__name__})"
    if not isinstance(doc, dict):
        return None, f"{STATS_FILE} is not a JSON object"
    return doc, ""


def source_kind(stats: dict[str, Any]) -> str:
    """``source.kind`` of our entries; upstream's entries came from M-Lab's BigQuery."""
    source = stats.get("source")
    if isinstance(source, dict) and isinstance(source.get("kind"), str):
        return source["kind"]
    return "upstream"


def check_entry(entry: Entry, artifacts: Path, index: HashIndex | None = None) -> CatalogEntry:
    """Compare an entry's data file with its stats.json record (see the module doc)."""
    data = entry.data_path(artifacts)
    stats, why = read_stats_object(entry.stats_path(artifacts))

    def corrupt(reason: str, kind: str = "unknown") -> CatalogEntry:
        return CatalogEntry(entry, Integrity.CORRUPT, reason, None, kind)

    if stats is None:
        return corrupt(why)
    kind = source_kind(stats)
    if not data.is_file():
        return corrupt(f"{DATA_FILE} is missing", kind)
    for field, want in (("dataset", entry.dataset.name),
                        ("period_start", entry.start.isoformat()),
                        ("period_end", entry.end.isoformat())):
        if field in stats and stats[field] != want:
            return corrupt(f"{STATS_FILE} says {field} {stats[field]!r}, the path says {want!r}",
                           kind)
    index = index or HashIndex(artifacts)
    size = data.stat().st_size
    recorded_sha = stats.get("sha256")
    if isinstance(recorded_sha, str):
        if stats.get("size") is not None and stats["size"] != size:
            return corrupt(f"{DATA_FILE} has {size} bytes, {STATS_FILE} records {stats['size']}",
                           kind)
        sha = index.sha256(f"{entry.key}/{DATA_FILE}", data)
        if sha != recorded_sha:
            return corrupt(f"{DATA_FILE} does not match the SHA-256 in {STATS_FILE}", kind)
        return CatalogEntry(entry, Integrity.PRESENT, "", sha, kind)
    problem = schema_problem(entry, data)
    if problem:
        return corrupt(problem, kind)
    sha = index.sha256(f"{entry.key}/{DATA_FILE}", data)
    return CatalogEntry(entry, Integrity.UNVERIFIED, f"{STATS_FILE} records no SHA-256", sha, kind)


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


def scan(artifacts: Path) -> list[CatalogEntry]:
    """Every entry directory under the cache, checked; sorted by dataset and period."""
    root = artifacts / CACHE_VERSION_DIR
    index = HashIndex(artifacts)
    found: list[CatalogEntry] = []
    for directory in sorted(root.glob("*/*/*")):
        if not directory.is_dir():
            continue
        parsed = parse_cache_key(f"{directory.relative_to(artifacts).as_posix()}/{DATA_FILE}")
        if parsed is None:
            continue
        entry = parsed[0]
        if not (entry.data_path(artifacts).exists() or entry.stats_path(artifacts).exists()):
            continue
        found.append(check_entry(entry, artifacts, index))
    with contextlib.suppress(OSError):  # a read-only tree: the index is only a cache
        index.save()
    found.sort(key=lambda c: (c.entry.dataset.name, c.entry.start, c.entry.end))
    return found
