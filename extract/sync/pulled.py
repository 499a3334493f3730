"""What earlier pulls installed here: each key's SHA-256, in ``state/pulled.json``.

Why: a pull keeps a local file that differs from the manifest, so that local
work (a build, an edit) is never overwritten without ``--force``. But a file
that is, byte for byte, what an earlier pull installed is not local work: the
publisher changed it since (a new push, or a rollback), and a reader must
follow the publisher, or a rollback never reaches the readers who pulled the
state it undid. So a pull replaces such a file, and removes one that the
manifest no longer names (withdrawn by a rollback or ``push --delete``). A
file whose bytes changed here since it was pulled is local work again: kept.

The record is rewritten whole (atomically) at the end of each pull; losing an
update to a concurrent pull only makes a later pull keep a file it could have
replaced, never the reverse.
"""

from __future__ import annotations

import json
from pathlib import Path

from extract.cache.store import atomic_path
from extract.paths import ArtifactPaths


def read_pulled(artifacts: Path) -> dict[str, str]:
    """Key -> SHA-256 of what pulls installed; empty when unreadable (then nothing
    counts as pulled, and every differing file is kept, as before the record)."""
    try:
        doc = json.loads(ArtifactPaths(artifacts).pulled.read_bytes())
    except (OSError, ValueError):
        return {}
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}


def write_pulled(artifacts: Path, files: dict[str, str]) -> None:
    path = ArtifactPaths(artifacts).pulled
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"files": dict(sorted(files.items()))}, indent=0) + "\n")
