"""Hashes verified for entries whose stats.json is upstream's (no size or SHA-256 in it).

Upstream's stats.json must stay byte-identical to the bucket's copy (its
manifest hash would no longer match), so what ``cache pull`` verified against
the manifest, or ``cache verify`` read itself, is recorded beside the cache,
under ``state/verified/``, one small JSON file per entry. A record is bound to
the exact stats.json it was made with (its SHA-256): an entry re-pulled or
re-made with another stats.json is no longer covered by it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from extract.cache.layout import Entry
from extract.cache.store import atomic_path
from extract.paths import ArtifactPaths


def record_path(entry: Entry, artifacts: Path) -> Path:
    return ArtifactPaths(artifacts).verified / f"{entry.key}.json"


def record(
    entry: Entry, artifacts: Path, stats_bytes: bytes, size: int, sha256: str, by: str
) -> None:
    """Remember that ``data.parquet`` had ``sha256`` next to this stats.json (``by``: how)."""
    doc = {
        "sha256": sha256,
        "size": size,
        "stats_sha256": hashlib.sha256(stats_bytes).hexdigest(),
        "verified_by": by,
    }
    with atomic_path(record_path(entry, artifacts)) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")


def lookup(entry: Entry, artifacts: Path, stats_bytes: bytes) -> dict[str, Any] | None:
    """The record for this entry if it was made with exactly this stats.json, else None."""
    try:
        doc = json.loads(record_path(entry, artifacts).read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("sha256"), str)
        or doc.get("stats_sha256") != hashlib.sha256(stats_bytes).hexdigest()
    ):
        return None
    return doc
