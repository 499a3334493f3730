"""The published states: the history, its retention, and rollback to a kept state.

Every publish keeps a copy of its manifest (``states.py``). ``previous`` links
the published states into a chain from the current one. A copy that is not on
that chain was written by a push that never got to publish (killed between
the two requests); history leaves it out, and the push that lost a publish
race deletes its own copy.

Retention (applied by ``push --delete`` only, the one command that removes
anything): a copy is kept while it is younger than ``keep_days`` or among the
newest ``keep_last``, and the current state's copy always; objects named by
any kept copy are never deleted.

Rollback publishes the files of a kept state as a new state, with the same
compare-and-swap as a push.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from extract.paths import MANIFEST
from extract.sync.gcs_states import state_store
from extract.sync.logs import SpanLog
from extract.sync.manifest import Manifest, ManifestError
from extract.sync.remote import ConflictError, Remote, SyncError, bullets
from extract.sync.states import (
    Published,
    StateInfo,
    StateStore,
    check_state_id,
    id_time,
    publish_state,
    read_current,
    state_id_of,
)

CHECK_JOBS = 8  # kept manifests read at once by history, to check each record


@dataclass(frozen=True)
class HistoryEntry:
    info: StateInfo
    manifest_url: str
    current: bool
    # why the record (object metadata, or the state block) does not describe its
    # kept manifest (files, bytes), or why that manifest cannot be read; None if it does
    disagrees: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "record_disagrees": self.disagrees,
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
    # why the current manifest is not as a push or rollback published it, if it is not
    edited: str | None = None


def history(remote: Remote, store: StateStore | None = None) -> Listing:
    """The published states, newest first, the current one marked.

    The chain of ``previous`` links from the current state decides what was
    published. Copies older than the chain's oldest link are listed too (the
    chain is cut there by retention, or those states predate the links);
    copies newer than that but off the chain never were published.
    """
    current, _, listing_problem = read_current(remote)
    store = state_store(remote, store)
    listing = Listing(current=state_id_of(current), problem=listing_problem)
    # The kept copy is create-only; the manifest can be overwritten by anyone with
    # write access, its state block kept, changed or dropped.
    sid = listing.current
    if sid:
        try:
            if store.read(sid).dumps() != current.dumps():
                listing.edited = (
                    f"it is not the kept copy of its state {sid} (state/manifests/{sid}.json): "
                    "it was changed in the bucket after it was published"
                )
        except (SyncError, ManifestError):
            listing.edited = f"it names state {sid}, which has no readable kept copy"
    elif current.files and not listing_problem:
        listing.edited = "it names no published state (no `state` block): edited, or not pushed"
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
    listed = []
    for sid in sorted(infos, reverse=True):
        if sid in chain or oldest is None or sid < oldest:
            listed.append(sid)
        else:
            listing.unpublished.append(sid)
    with ThreadPoolExecutor(max_workers=CHECK_JOBS) as pool:
        checks = list(pool.map(lambda sid: check_record(store, infos[sid]), listed))
    listing.entries = [
        HistoryEntry(infos[sid], store.url(sid), sid == listing.current, problem)
        for sid, problem in zip(listed, checks, strict=True)
    ]
    return listing


def check_record(store: StateStore, info: StateInfo) -> str | None:
    """Why ``info`` does not describe its kept manifest, or None when it does.

    The record is what the listing shows (object metadata, or the body's state
    block), written by the push; anyone with write access can change either.
    The files themselves are what a pull or a rollback would serve, so the
    record is checked against them: file count, and bytes where every file
    records its size (upstream's format may not)."""
    try:
        manifest = store.read(info.id)
    except SyncError as exc:
        return f"its kept manifest cannot be read ({exc})"
    sizes = [r.size for r in manifest.files.values()]
    problems = []
    if info.files != len(manifest.files):
        problems.append(f"record says {info.files} files, the manifest lists {len(manifest.files)}")
    if None not in sizes and info.bytes != sum(s or 0 for s in sizes):
        problems.append(
            f"record says {info.bytes} bytes, the files add up to {sum(s or 0 for s in sizes)}"
        )
    body = StateInfo.from_json(manifest.state)
    if body is not None and body != info:
        problems.append("the object's metadata differs from the manifest's state block")
    return "; ".join(problems) or None


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
    remote: Remote,
    *,
    current: str | None,
    keep_days: int,
    keep_last: int,
    dry_run: bool,
    pending: str | None = None,
    log: SpanLog | None = None,
    store: StateStore | None = None,
) -> Retention:
    """Prune kept copies past retention; return the URLs the remaining copies name.

    Every remaining copy is read whole: if one cannot be read or parsed, this
    raises, and ``push --delete`` deletes nothing (an object it names might be
    the only copy of a state someone needs). ``pending`` is the id of a state
    a dry run would have written (it counts among the newest).
    """
    store = state_store(remote, store)
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


def unrestorable_objects(remote: Remote, manifest: Manifest) -> list[str]:
    """Keys whose object (in this bucket) is gone, or no longer the bytes the state
    names (another size, another SHA-256 than its push recorded, or, with no hash
    recorded, written after the state was published: an overwrite by another tool):
    such a state cannot be restored, and its readers' pulls would fail every retry."""
    stored = {obj.url: obj for obj in remote.objects()}
    info = StateInfo.from_json(manifest.state)
    # published_at is to the second; a state's objects are all written before it
    published = id_time(info.id) + timedelta(seconds=1) if info else None
    bad = []
    for key, record in manifest.files.items():
        if record.url != remote.url_for(key, record.sha256):
            continue  # not an object of this bucket (another bucket's URL, say)
        obj = stored.get(record.url)
        if obj is None:
            bad.append(f"{key} (deleted)")
        elif (
            (record.size is not None and obj.size != record.size)
            or (obj.sha256 is not None and obj.sha256 != record.sha256)
            or (obj.sha256 is None and published is not None and obj.created > published)
        ):
            bad.append(f"{key} (replaced: other bytes than the state names)")
    return sorted(bad)


def rollback(
    remote: Remote,
    state_id: str,
    artifacts: Path,
    dry_run: bool = False,
    store: StateStore | None = None,
) -> RollbackReport:
    """Make a kept state current again: publish its files as a new state.

    The new state is an ordinary entry of the history (with ``rollback_of``),
    published with the same compare-and-swap as a push, so a rollback racing a
    push or another rollback fails cleanly instead of overwriting it. It refuses
    a state whose objects were deleted or replaced since: publishing it would
    hand readers URLs that 404 or bytes that fail their SHA-256.
    """
    store = state_store(remote, store)
    target = store.read(check_state_id(state_id))
    report = RollbackReport(target=StateInfo.from_json(target.state))
    current, generation, report.problem = read_current(remote)
    report.added, report.removed, report.changed = _diff(current, target)
    if generation and current.dumps() == target.dumps():
        return report
    missing = unrestorable_objects(remote, target)
    if missing:
        raise SyncError(
            f"state {state_id} names {len(missing)} object(s) that are no longer in "
            f"{remote.label} as it published them (deleted by `push --delete`, or "
            "overwritten); nothing was published. "
            f"Restore them from the bucket's soft delete or pick another state:\n"
            f"{bullets(missing)}"
        )
    if dry_run:
        return report
    rolled = Manifest(files=dict(target.files))
    with SpanLog(artifacts, "rollback") as log:
        report.log = log.path
        try:
            with log.span("publish", MANIFEST, remote.url_for_manifest()) as span:
                report.published = publish_state(
                    remote,
                    rolled,
                    generation,
                    state_id_of(current),
                    rollback_of=state_id,
                    log=log,
                    store=store,
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
