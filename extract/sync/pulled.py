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

A record that cannot be read is never taken as empty in silence: treated as
empty, a pull would keep stale files (a rollback's reader would go on seeing
the undone state) and say nothing. It is moved aside as
``state/pulled.json.corrupt-<UTC>`` and, while such a file is there, a pull
lists the local files it could not judge (differing from the manifest, or
absent from it: pulled earlier and since replaced or withdrawn, or local work)
and fails, until the user decides: ``--accept-local`` keeps them as local
work and deletes the moved copies (so does deleting them by hand); ``--force``
takes the manifest's bytes for those that differ.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from extract.cache.store import atomic_path
from extract.paths import ArtifactPaths

CORRUPT_SUFFIX = ".corrupt-"


@dataclass
class Pulled:
    """What pulls of one manifest location downloaded here, and whether that can be trusted."""

    files: dict[str, str] = field(default_factory=dict)  # key -> SHA-256
    moved: Path | None = None  # where this read moved an unreadable record
    # moved-aside records not yet decided on (--accept-local): files the record
    # does not name cannot be judged while there is one
    undecided: list[Path] = field(default_factory=list)


def _problem(doc: Any) -> str | None:
    """Why ``doc`` is not a pulled.json document ({"origins": {origin: {key: sha256}}})."""
    if not isinstance(doc, dict) or not isinstance(doc.get("origins"), dict):
        return 'not an object with "origins"'
    for origin, files in doc["origins"].items():
        if not isinstance(files, dict):
            return f"origin {origin!r} does not map keys to hashes"
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            return f"origin {origin!r} has a key or a hash that is not a string"
    return None


def _document(artifacts: Path) -> tuple[dict[str, dict[str, str]], Path | None]:
    """The record's origins, and where an unreadable record was moved (None if it was not)."""
    path = ArtifactPaths(artifacts).pulled
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    try:
        doc: Any = json.loads(data)
        problem = _problem(doc)
    except ValueError as exc:
        problem = f"not JSON: {exc}"
    if problem is None:
        return doc["origins"], None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    moved = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{stamp}")
    os.replace(path, moved)
    return {}, moved


def undecided(artifacts: Path) -> list[Path]:
    """Moved-aside records the user has not yet decided on."""
    path = ArtifactPaths(artifacts).pulled
    return sorted(path.parent.glob(f"{path.name}{CORRUPT_SUFFIX}*"))


def read_pulled(artifacts: Path, origin: str) -> Pulled:
    """Key -> SHA-256 of what pulls of ``origin`` downloaded. An unreadable record is
    moved aside (``moved``), never read as empty in silence."""
    origins, moved = _document(artifacts)
    return Pulled(origins.get(origin, {}), moved, undecided(artifacts))


def discard_undecided(artifacts: Path) -> list[Path]:
    """The user's decision: files no record names are local work. Deletes the moved
    records (what --accept-local does) and returns them."""
    found = undecided(artifacts)
    for path in found:
        path.unlink(missing_ok=True)
    return found


def write_pulled(
    artifacts: Path, origin: str, files: dict[str, str], state: dict[str, Any] | None = None
) -> None:
    """Record what this pull of ``origin`` installed, and the published state its manifest
    named (id, time, commit): the readers of a pulled snapshot say which state it is."""
    doc, _ = _document(artifacts)
    doc[origin] = dict(sorted(files.items()))
    states = _states(artifacts)
    if state is not None:
        states[origin] = state
    with atomic_path(ArtifactPaths(artifacts).pulled) as tmp:
        tmp.write_text(
            json.dumps({"origins": doc, "states": states}, indent=1, sort_keys=True) + "\n"
        )


def _states(artifacts: Path) -> dict[str, Any]:
    """The ``states`` block of a readable record (what write_pulled keeps across pulls)."""
    try:
        states = json.loads(ArtifactPaths(artifacts).pulled.read_bytes()).get("states")
    except (OSError, ValueError, AttributeError):
        return {}
    return states if isinstance(states, dict) else {}
