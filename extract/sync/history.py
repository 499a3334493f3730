"""Every published state kept: a create-only copy of each manifest, retention, rollback.

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

``previous`` links the published states into a chain from the current one. A
copy that is not on that chain was written by a push that never got to
publish (killed between the two requests); history leaves it out, and the
push that lost a publish race deletes its own copy.

Retention (applied by ``push --delete`` only, the one command that removes
anything): a copy is kept while it is younger than ``keep_days`` or among the
newest ``keep_last``, and the current state's copy always; objects named by
any kept copy are never deleted.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc

from extract.paths import MANIFEST, MANIFESTS_HISTORY
from extract.sync.logs import SpanLog
from extract.sync.manifest import Manifest, ManifestError, parse_manifest
from extract.sync.remote import (
    IMMUTABLE,
    ConflictError,
    GcsRemote,
    SyncError,
    public_url,
)

STATE_ID_FORMAT = "%Y%m%dT%H%M%SZ"
STATE_ID_RE = re.compile(r"^\d{8}T\d{6}Z$")
DEFAULT_KEEP_DAYS = 30
DEFAULT_KEEP_LAST = 10
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


class History:
    """The kept manifests of one bucket: list, read, create-only write, delete."""

    def __init__(self, remote: GcsRemote) -> None:
        self.remote = remote

    @staticmethod
    def name(state_id: str) -> str:
        return f"{MANIFESTS_HISTORY}{state_id}.json"

    def url(self, state_id: str) -> str:
        return public_url(self.remote.bucket_name, self.name(state_id))

    def _call(self, what: str, fn):  # type: ignore[no-untyped-def]
        return self.remote.transfer.call(f"{what} {self.remote.label}", fn, retry=False)

    def list(self) -> list[KeptState]:
        """Every kept copy, newest first; names that are not ``<id>.json`` are ignored."""

        def listing() -> list[KeptState]:
            found = []
            for blob in self.remote.client.list_blobs(
                self.remote.bucket_name, prefix=MANIFESTS_HISTORY, **self.remote._kwargs()
            ):
                sid = blob.name[len(MANIFESTS_HISTORY) :].removesuffix(".json")
                if blob.name.endswith(".json") and STATE_ID_RE.match(sid):
                    info = StateInfo.from_metadata(blob.metadata)
                    found.append(
                        KeptState(
                            sid,
                            blob.name,
                            int(blob.generation or 0),
                            info if info and info.id == sid else None,
                        )
                    )
            return sorted(found, key=lambda k: k.id, reverse=True)

        return self._call("listing the history in", listing)

    def read(self, state_id: str) -> Manifest:
        """A kept manifest, validated like any manifest (its ``state`` block included)."""
        name = self.name(check_state_id(state_id))

        def get() -> bytes | None:
            try:
                return self.remote.bucket.blob(name).download_as_bytes(**self.remote._kwargs())
            except gexc.NotFound:
                if not self.remote.bucket.exists(**self.remote._kwargs()):
                    raise SyncError(
                        f"bucket {self.remote.label} does not exist (or is not "
                        "visible with these credentials)"
                    ) from None
                return None

        data = self._call(f"reading {name} from", get)
        if data is None:
            raise SyncError(
                f"no kept state {state_id} in {self.remote.label} "
                "(`iqb sync history` lists the states there are)"
            )
        try:
            return parse_manifest(data, f"{self.remote.label}/{name}")
        except ManifestError as exc:
            raise SyncError(str(exc)) from None

    def keep(self, data: bytes, info: StateInfo) -> int | None:
        """Write the copy create-only; its generation, or None if that id exists already."""
        blob = self.remote.bucket.blob(self.name(info.id))
        blob.cache_control = IMMUTABLE
        blob.metadata = info.metadata()

        def put() -> int | None:
            try:
                blob.upload_from_string(
                    data,
                    content_type="application/json",
                    if_generation_match=0,
                    checksum="crc32c",
                    **self.remote._kwargs(),
                )
            except gexc.PreconditionFailed:
                return None
            return int(blob.generation or 0)

        return self._call(f"keeping {self.name(info.id)} in", put)

    def delete(self, kept: KeptState) -> None:
        def drop() -> None:
            with contextlib.suppress(gexc.NotFound, gexc.PreconditionFailed):
                self.remote.bucket.blob(kept.name).delete(
                    if_generation_match=kept.generation, **self.remote._kwargs()
                )

        self._call(f"deleting {kept.name} from", drop)

    def info(self, kept: KeptState) -> StateInfo | None:
        """The facts of a copy: from the listing, or from its body when that lacks them."""
        if kept.info is not None:
            return kept.info
        try:
            return StateInfo.from_json(self.read(kept.id).state)
        except SyncError:
            return None


@dataclass(frozen=True)
class Published:
    generation: int  # of state/manifest.json
    data: bytes
    info: StateInfo


def publish_state(
    remote: GcsRemote,
    manifest: Manifest,
    generation: int,
    previous: str | None,
    rollback_of: str | None = None,
    log: SpanLog | None = None,
) -> Published:
    """Keep a create-only copy of the new state, then publish it with the precondition.

    The copy comes first so that no state is ever current without its record.
    If the publish loses a race (ConflictError), the copy is deleted again:
    it never was a published state. A process killed between the two leaves
    a copy off the chain of ``previous`` links, which history does not list.
    """
    history = History(remote)
    for _ in range(_ID_ATTEMPTS):
        info = describe_state(manifest, previous, rollback_of)
        data = document(manifest, info.to_json())
        if log is not None:
            with log.span("keep", history.name(info.id), history.url(info.id)) as span:
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
            history.delete(KeptState(info.id, history.name(info.id), kept, info))
        raise
    return Published(new_generation, data, info)


def read_current(remote: GcsRemote) -> tuple[Manifest, int, str | None]:
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


@dataclass(frozen=True)
class HistoryEntry:
    info: StateInfo
    manifest_url: str
    current: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.info.id,
            "published_at": self.info.published_at,
            "commit": self.info.commit,
            "files": self.info.files,
            "bytes": self.info.bytes,
            "manifest_url": self.manifest_url,
            "current": self.current,
            "rollback_of": self.info.rollback_of,
        }


@dataclass
class Listing:
    entries: list[HistoryEntry] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)  # copies off the chain (see module doc)
    unreadable: list[str] = field(default_factory=list)
    current: str | None = None  # the current state's id, if it has one
    problem: str | None = None  # why the current manifest could not be read


def history(remote: GcsRemote) -> Listing:
    """The published states, newest first, the current one marked.

    The chain of ``previous`` links from the current state decides what was
    published. Copies older than the chain's oldest link are listed too (the
    chain is cut there by retention, or those states predate the links);
    copies newer than that but off the chain never were published.
    """
    current, _, listing_problem = read_current(remote)
    store = History(remote)
    listing = Listing(current=state_id_of(current), problem=listing_problem)
    infos: dict[str, StateInfo] = {}
    for kept in store.list():
        info = store.info(kept)
        if info is None:
            listing.unreadable.append(kept.id)
        else:
            infos[kept.id] = info
    chain: list[str] = []
    sid = listing.current
    while sid in infos and sid not in chain:
        chain.append(sid)
        sid = infos[sid].previous
    oldest = min(chain) if chain else None
    for sid in sorted(infos, reverse=True):
        if sid in chain or oldest is None or sid < oldest:
            listing.entries.append(HistoryEntry(infos[sid], store.url(sid), sid == listing.current))
        else:
            listing.unpublished.append(sid)
    return listing


# --------------------------------------------------------------------------- retention


def select_prunable(
    ids: Iterable[str], now: datetime, keep_days: int, keep_last: int, protect: Collection[str] = ()
) -> list[str]:
    """The ids retention lets go: older than ``keep_days`` and not among the newest
    ``keep_last`` and not protected (the current state)."""
    newest_first = sorted(set(ids), reverse=True)
    cutoff = now - timedelta(days=keep_days)
    return [
        sid
        for i, sid in enumerate(newest_first)
        if i >= keep_last and sid not in protect and id_time(sid) < cutoff
    ]


@dataclass
class Retention:
    pruned: list[str] = field(default_factory=list)  # ids deleted (or that would be)
    protected_urls: set[str] = field(default_factory=set)  # every URL a kept copy names


def apply_retention(
    remote: GcsRemote,
    *,
    current: str | None,
    keep_days: int,
    keep_last: int,
    dry_run: bool,
    pending: str | None = None,
    log: SpanLog | None = None,
) -> Retention:
    """Prune kept copies past retention; return the URLs the remaining copies name.

    Every remaining copy is read whole: if one cannot be read or parsed, this
    raises, and ``push --delete`` deletes nothing (an object it names might be
    the only copy of a state someone needs). ``pending`` is the id of a state
    a dry run would have written (it counts among the newest).
    """
    store = History(remote)
    copies = store.list()
    # The pending state would be the newest: it takes one of the keep_last places.
    slots = keep_last - 1 if pending else keep_last
    prunable = set(
        select_prunable(
            [k.id for k in copies],
            datetime.now(UTC),
            keep_days,
            slots,
            {current} if current else (),
        )
    )
    result = Retention()
    for kept in copies:
        if kept.id in prunable:
            result.pruned.append(kept.id)
            if dry_run:
                continue
            if log is not None:
                with log.span("prune", kept.name, store.url(kept.id)):
                    store.delete(kept)
            else:
                store.delete(kept)
        else:
            try:
                manifest = store.read(kept.id)
            except SyncError as exc:
                raise SyncError(
                    f"kept state {kept.id} cannot be read, so the objects it names "
                    f"are unknown: no object was deleted. Fix or remove "
                    f"{store.url(kept.id)}, then run --delete again.\n{exc}"
                ) from None
            result.protected_urls.update(r.url for r in manifest.files.values())
    return result


# --------------------------------------------------------------------------- rollback


@dataclass
class RollbackReport:
    target: StateInfo | None = None  # the state made current again (None: legacy copy)
    published: Published | None = None  # None: it was already current, or a dry run
    added: int = 0  # keys that come back
    removed: int = 0  # keys that go
    changed: int = 0  # keys with other bytes
    log: Path | None = None
    problem: str | None = None  # the current manifest was unusable (and is being replaced)


def _diff(old: Manifest, new: Manifest) -> tuple[int, int, int]:
    added = sum(k not in old.files for k in new.files)
    removed = sum(k not in new.files for k in old.files)
    changed = sum(k in old.files and old.files[k].sha256 != r.sha256 for k, r in new.files.items())
    return added, removed, changed


def missing_objects(remote: GcsRemote, manifest: Manifest) -> list[str]:
    """Keys whose object (in this bucket) no longer exists: such a state cannot be restored."""
    ours = public_url(remote.bucket_name, "objects/")
    present = {obj.url for obj in remote.objects()}
    return sorted(
        k for k, r in manifest.files.items() if r.url.startswith(ours) and r.url not in present
    )


def rollback(
    remote: GcsRemote, state_id: str, artifacts: Path, dry_run: bool = False
) -> RollbackReport:
    """Make a kept state current again: publish its files as a new state.

    The new state is an ordinary entry of the history (with ``rollback_of``),
    published with the same compare-and-swap as a push, so a rollback racing a
    push or another rollback fails cleanly instead of overwriting it. It refuses
    a state whose objects were deleted since: publishing it would hand readers
    URLs that 404.
    """
    store = History(remote)
    target = store.read(check_state_id(state_id))
    report = RollbackReport(target=StateInfo.from_json(target.state))
    current, generation, report.problem = read_current(remote)
    report.added, report.removed, report.changed = _diff(current, target)
    if generation and current.dumps() == target.dumps():
        return report
    missing = missing_objects(remote, target)
    if missing:
        shown = "\n".join(f"  - {k}" for k in missing[:10])
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise SyncError(
            f"state {state_id} names {len(missing)} object(s) that are no longer in "
            f"{remote.label} (deleted by `push --delete`?); nothing was published. "
            f"Restore them from the bucket's soft delete or pick another state:\n"
            f"{shown}{more}"
        )
    if dry_run:
        return report
    rolled = Manifest(files=dict(target.files))
    with SpanLog(artifacts, "rollback") as log:
        report.log = log.path
        try:
            with log.span("publish", MANIFEST, remote.url_for_manifest()) as span:
                report.published = publish_state(
                    remote, rolled, generation, state_id_of(current), rollback_of=state_id, log=log
                )
                span.bytes = len(report.published.data)
        except ConflictError:
            raise ConflictError(
                f"{remote.label}/{MANIFEST} changed since this rollback read "
                "it (another push or rollback?); nothing was published: check "
                "`iqb sync history` and run the rollback again if still "
                "wanted"
            ) from None
    return report
