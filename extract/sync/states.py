"""Every published state recorded: a create-only copy of each manifest, then the publish.

Why: a push replaces ``state/manifest.json``. Without a record of the manifests
before it, a bad publish could only be undone from the cloud console, and only
if the bucket happened to keep old object versions. So every publish (a push
or a rollback) first writes the manifest it is about to publish, create-only,
as ``state/manifests/<UTC id>.json``, and then replaces ``state/manifest.json``
with the same bytes under the generation precondition. Each copy carries a
``state`` block: its id, time, the commit of this repo that published it, the
file and byte counts, the state it replaced (``previous``) and, for a rollback,
the state it restored (``rollback_of``).

History costs little: objects are content-addressed (``objects/<key
folder>/<sha256>/<name>``), so a state shares every unchanged file with the
states before it; only changed files add objects, and a kept manifest is a
small JSON file.

What is done with the record (listing, retention, rollback): ``history.py``.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from extract.paths import MANIFEST, MANIFESTS_HISTORY
from extract.sync.logs import SpanLog
from extract.sync.manifest import Manifest, ManifestError, parse_manifest
from extract.sync.remote import ConflictError, Remote, SyncError

STATE_ID_FORMAT = "%Y%m%dT%H%M%SZ"
STATE_ID_RE = re.compile(r"^\d{8}T\d{6}Z$")
_ID_ATTEMPTS = 5  # two publishes in one second: the later waits for the next second


def repo_commit() -> str:
    """The commit of this repo's checkout (``git rev-parse HEAD``), or "unknown".

    Recorded in every kept state so the morning after a bad publish one can
    see which code produced it. An installed copy without git says "unknown"
    rather than failing the push.
    """
    here = Path(__file__).resolve().parent
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = proc.stdout.strip()
    return sha if proc.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", sha) else "unknown"


def new_state_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(STATE_ID_FORMAT)


def id_time(state_id: str) -> datetime:
    return datetime.strptime(state_id, STATE_ID_FORMAT).replace(tzinfo=UTC)


def check_state_id(state_id: str) -> str:
    """The id itself, or one SyncError saying what an id looks like."""
    if not STATE_ID_RE.match(state_id):
        raise SyncError(
            f"{state_id!r} is not a state id: ids look like 20261130T120000Z "
            "(`iqb sync history` lists them)"
        )
    try:
        id_time(state_id)
    except ValueError:
        raise SyncError(f"{state_id!r} is not a valid UTC time (YYYYMMDDTHHMMSSZ)") from None
    return state_id


@dataclass(frozen=True)
class StateInfo:
    """The ``state`` block of a kept (and published) manifest."""

    id: str
    published_at: str  # ISO 8601 UTC
    commit: str
    files: int
    bytes: int
    previous: str | None = None  # the state this one replaced
    rollback_of: str | None = None  # for a rollback: the state it made current again

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "published_at": self.published_at,
            "commit": self.commit,
            "files": self.files,
            "bytes": self.bytes,
            "previous": self.previous,
            "rollback_of": self.rollback_of,
        }

    def metadata(self) -> dict[str, str]:
        """The same facts as GCS custom metadata (strings only), so that listing the
        history needs one listing request, not one download per state."""
        return {
            f"iqb-{k.replace('_', '-')}": "" if v is None else str(v)
            for k, v in self.to_json().items()
        }

    @classmethod
    def from_json(cls, doc: Any) -> StateInfo | None:
        """A StateInfo from a ``state`` block, or None if it is missing or malformed."""
        if not isinstance(doc, dict):
            return None
        try:
            sid, at, commit = doc["id"], doc["published_at"], doc["commit"]
            files, size = int(doc["files"]), int(doc["bytes"])
        except (KeyError, TypeError, ValueError):
            return None
        if not (
            isinstance(sid, str)
            and STATE_ID_RE.match(sid)
            and isinstance(at, str)
            and isinstance(commit, str)
        ):
            return None
        previous, rollback_of = doc.get("previous") or None, doc.get("rollback_of") or None
        return cls(
            sid,
            at,
            commit,
            files,
            size,
            previous if isinstance(previous, str) else None,
            rollback_of if isinstance(rollback_of, str) else None,
        )

    @classmethod
    def from_metadata(cls, meta: dict[str, str] | None) -> StateInfo | None:
        if not meta:
            return None
        return cls.from_json(
            {
                k.removeprefix("iqb-").replace("-", "_"): v
                for k, v in meta.items()
                if k.startswith("iqb-")
            }
        )


def describe_state(
    manifest: Manifest,
    previous: str | None,
    rollback_of: str | None = None,
    now: datetime | None = None,
) -> StateInfo:
    """The record of a state about to be published now, by this checkout of the repo."""
    now = now or datetime.now(UTC)
    return StateInfo(
        id=new_state_id(now),
        published_at=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        commit=repo_commit(),
        files=len(manifest.files),
        bytes=sum(r.size or 0 for r in manifest.files.values()),
        previous=previous,
        rollback_of=rollback_of,
    )


def document(manifest: Manifest, state: dict[str, Any] | None = None) -> bytes:
    """The published bytes: upstream's ``{"v", "files"}`` plus the ``state`` block.

    Upstream readers only look at ``files``; deterministic, so the kept copy and
    ``state/manifest.json`` are the very same bytes.
    """
    doc = json.loads(manifest.dumps())
    state = manifest.state if state is None else state
    if state is not None:
        doc["state"] = state
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def state_id_of(manifest: Manifest) -> str | None:
    info = StateInfo.from_json(manifest.state)
    return info.id if info else None


@dataclass(frozen=True)
class KeptState:
    """One copy under ``state/manifests/`` as listed (its facts from the object's metadata)."""

    id: str
    name: str
    generation: int
    info: StateInfo | None  # None: metadata missing (e.g. copied by hand); read the body


class StateStore(Protocol):
    """What history, retention and rollback need of a bucket beyond a ``Remote``: its
    kept manifests. ``gcs_states.History`` is the GCS one; another store (S3: a prefix, PutObject
    with If-None-Match, conditional DeleteObject) provides the same calls."""

    def url(self, state_id: str) -> str:
        """Where a reader pulls the kept manifest of ``state_id`` from."""
        ...

    def list(self) -> list[KeptState]:
        """Every kept copy, newest first, with its record when the listing carries it."""
        ...

    def read(self, state_id: str) -> Manifest:
        """A kept manifest, validated; SyncError if it is missing or unusable."""
        ...

    def keep(self, data: bytes, info: StateInfo) -> int | None:
        """Write a copy create-only; its generation, or None if that id exists already."""
        ...

    def delete(self, kept: KeptState) -> None:
        """Delete a copy, only if it is still the one listed."""
        ...

    def info(self, kept: KeptState) -> StateInfo | None:
        """The record of a copy: from the listing, or from its body."""
        ...


def kept_name(state_id: str) -> str:
    """The object name of the kept copy of ``state_id``: ``state/manifests/<id>.json``."""
    return f"{MANIFESTS_HISTORY}{state_id}.json"


@dataclass(frozen=True)
class Published:
    generation: int  # of state/manifest.json
    data: bytes
    info: StateInfo


def publish_state(
    remote: Remote,
    manifest: Manifest,
    generation: int,
    previous: str | None,
    rollback_of: str | None = None,
    log: SpanLog | None = None,
    *,
    store: StateStore,
) -> Published:
    """Keep a create-only copy of the new state, then publish it with the precondition.

    The copy comes first so that no state is ever current without its record.
    If the publish loses a race (ConflictError), the copy is deleted again:
    it never was a published state. A process killed between the two leaves
    a copy off the chain of ``previous`` links, which history does not list.
    """
    history = store
    for _ in range(_ID_ATTEMPTS):
        info = describe_state(manifest, previous, rollback_of)
        data = document(manifest, info.to_json())
        if log is not None:
            with log.span("keep", kept_name(info.id), history.url(info.id)) as span:
                span.bytes = len(data)
                kept = history.keep(data, info)
        else:
            kept = history.keep(data, info)
        if kept is not None:
            break
        time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)  # the next second: a new id
    else:
        raise SyncError(
            f"could not find a free state id in {remote.label}/{MANIFESTS_HISTORY} "
            f"after {_ID_ATTEMPTS} tries (clock stuck?)"
        )
    try:
        new_generation = remote.publish(data, generation)
    except ConflictError:
        with contextlib.suppress(SyncError):
            history.delete(KeptState(info.id, kept_name(info.id), kept, info))
        raise
    return Published(new_generation, data, info)


def read_current(remote: Remote) -> tuple[Manifest, int, str | None]:
    """The published manifest, its generation, and why it is unusable if it is.

    Unlike a push, history and rollback must work when the current manifest is
    garbage: that may be the very bad publish one wants to undo. An unusable
    manifest counts as empty (no state, no files); its generation still guards
    the rollback's publish.
    """
    data, generation = remote.read_manifest()
    if data is None:
        return Manifest(), generation, None
    try:
        return parse_manifest(data, f"{remote.label}/{MANIFEST}"), generation, None
    except ManifestError as exc:
        return Manifest(), generation, str(exc)
