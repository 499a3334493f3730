"""What earlier pulls downloaded here, per manifest: each key's SHA-256, in
``state/pulled.json``.

Why: a pull keeps a local file that differs from the manifest, so that local
work (a build, an edit, an extraction) is never overwritten without
``--force``. But a file that this very manifest location delivered, and that is
still byte for byte as it was downloaded, is not local work: when that
manifest later names other bytes (a new push, a rollback) the pull replaces
it, and when it no longer names the file (withdrawn by a rollback or ``push
--delete``) the pull removes it. Otherwise a rollback would never reach the
readers who pulled the state it undid.

Only files a pull downloaded count, each under the manifest location it came
from (as given, credentials redacted): a file found already current, made
here, or delivered by another manifest (another bucket, ``mlab``, an old kept
state's URL) is never replaced or removed by this rule.

The record is rewritten whole (atomically) at the end of each pull; losing an
update to a concurrent pull only makes a later pull keep a file it could have
replaced, never the reverse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from extract.cache.store import atomic_path
from extract.paths import ArtifactPaths


def _document(artifacts: Path) -> dict[str, dict[str, str]]:
    try:
        doc: Any = json.loads(ArtifactPaths(artifacts).pulled.read_bytes())
    except (OSError, ValueError):
        return {}
    origins = doc.get("origins") if isinstance(doc, dict) else None
    if not isinstance(origins, dict):
        return {}
    return {
        origin: {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}
        for origin, files in origins.items()
        if isinstance(origin, str) and isinstance(files, dict)
    }


def read_pulled(artifacts: Path, origin: str) -> dict[str, str]:
    """Key -> SHA-256 of what pulls of ``origin`` downloaded; empty when unreadable
    (then nothing counts as pulled, and every differing file is kept)."""
    return _document(artifacts).get(origin, {})


def write_pulled(artifacts: Path, origin: str, files: dict[str, str]) -> None:
    doc = _document(artifacts)
    doc[origin] = dict(sorted(files.items()))
    with atomic_path(ArtifactPaths(artifacts).pulled) as tmp:
        tmp.write_text(json.dumps({"origins": doc}, indent=1, sort_keys=True) + "\n")
