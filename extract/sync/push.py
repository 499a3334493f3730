"""Push: mirror the publishable artifacts to a bucket, manifest last.

A push is a plan, then three steps, each one function:
1. ``plan_push`` (``push_plan.py``): refusals, the database snapshot, hashes,
   and the diff against the published manifest; ``--dry-run`` stops here and
   prints it;
2. ``upload``: new and changed files, in parallel, to content-addressed objects;
3. ``publish``: only when every upload succeeded, keep a create-only copy of the
   new manifest under ``state/manifests/`` (``states.py``) and publish the same
   bytes with ``if_generation_match`` = the generation the plan read (a
   concurrent push makes this fail instead of silently dropping its files);
4. ``retain`` (``--delete`` only): prune kept manifests past retention, then
   remove the objects that neither the new manifest nor any kept one names.
A push killed before 3 leaves the old manifest, whose objects are untouched;
the rerun finds the objects it already uploaded and reuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from extract import defaults
from extract.cache.hashindex import file_sha256
from extract.cache.store import atomic_path
from extract.paths import MANIFEST, ArtifactPaths
from extract.sync.gcs_states import state_store
from extract.sync.history import apply_retention
from extract.sync.logs import SpanLog
from extract.sync.manifest import Manifest
from extract.sync.push_plan import (
    Plan,
    SyntheticRefused,
    Upload,
    plan_push,
    read_published,
)
from extract.sync.remote import Remote, StoredObject, SyncError
from extract.sync.states import (
    StateInfo,
    StateStore,
    document,
    new_state_id,
    publish_state,
    state_id_of,
)

__all__ = ["PushReport", "SyntheticRefused", "Upload", "push", "read_published"]


@dataclass
class PushReport:
    uploads: list[Upload] = field(default_factory=list)
    unchanged: int = 0
    remote_only: list[str] = field(default_factory=list)  # kept, or dropped with --delete
    snapshot: str | None = None  # key of a new database snapshot
    created: int = 0
    reused: int = 0
    bytes: int = 0
    published: bool = False
    generation: int = 0
    garbage: list[StoredObject] = field(default_factory=list)  # deleted, or would be
    state: StateInfo | None = None  # the kept state this push published
    pruned: list[str] = field(default_factory=list)  # kept states let go by --delete
    replaced: StateInfo | None = None  # the state that was current when the push read it
    log: Path | None = None

    @classmethod
    def of(cls, plan: Plan) -> PushReport:
        return cls(
            uploads=plan.uploads,
            unchanged=plan.unchanged,
            remote_only=plan.remote_only,
            snapshot=plan.snapshot,
            generation=plan.generation,
            replaced=StateInfo.from_json(plan.previous.state),
        )


def push(
    artifacts: Path,
    remote: Remote,
    *,
    jobs: int = defaults.NETWORK_JOBS,
    dry_run: bool = False,
    delete: bool = False,
    allow_synthetic: bool = False,
    on_upload: Callable[[Upload], None] | None = None,
    keep_days: int = defaults.KEEP_DAYS,
    keep_last: int = defaults.KEEP_LAST,
    store: StateStore | None = None,
) -> PushReport:
    """Push the artifacts under ``artifacts`` to ``remote``; see the module docstring.

    ``store`` keeps the published states; a GCS bucket's own by default."""
    started = datetime.now(UTC)
    states = state_store(remote, store)
    plan = plan_push(
        artifacts,
        remote,
        jobs=jobs,
        dry_run=dry_run,
        delete=delete,
        allow_synthetic=allow_synthetic,
    )
    report = PushReport.of(plan)
    if dry_run:
        if delete:  # the state this push would publish becomes the current one
            pending = new_state_id() if plan.changes else None
            current = None if pending else state_id_of(plan.previous)
            retain(
                remote, states, plan.new, current, started, keep_days, keep_last, report, pending
            )
        return report
    with SpanLog(artifacts, "push") as log:
        report.log = log.path
        upload(remote, report, log, jobs, on_upload)
        publish(artifacts, remote, states, plan, report, log)
        if delete:
            current = report.state.id if report.state else state_id_of(plan.previous)
            retain(
                remote, states, plan.new, current, started, keep_days, keep_last, report, log=log
            )
    return report


def upload(
    remote: Remote,
    report: PushReport,
    log: SpanLog,
    jobs: int,
    on_upload: Callable[[Upload], None] | None,
) -> None:
    """Upload the plan's files in parallel, each once; raise naming every failure."""
    failures: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_upload_one, remote, log, up): up for up in report.uploads}
        for future in as_completed(futures):
            up = futures[future]
            try:
                created = future.result()
            except Exception as exc:  # one failed file must not hide the others
                failures.append((up.key, str(exc)))
                continue
            report.created += created
            report.reused += not created
            report.bytes += up.size if created else 0
            if on_upload:
                on_upload(up)
    if failures:
        shown = "\n".join(f"  - {k}: {e}" for k, e in sorted(failures)[:20])
        raise SyncError(
            f"{len(failures)} upload(s) failed; the published manifest was "
            f"left as it was (see {log.path}):\n{shown}"
        )


def _upload_one(remote: Remote, log: SpanLog, up: Upload) -> bool:
    # The hash index trusts a file's (size, mtime): bytes changed under both (a disk
    # error, an in-place edit) would be stored under a hash they do not have, and
    # every later push would keep naming that object. One more read settles it.
    actual = file_sha256(up.path)
    if actual != up.sha256:
        raise SyncError(
            f"{up.path}: its bytes changed since they were hashed (SHA-256 {actual[:12]}..., "
            f"recorded {up.sha256[:12]}... for the same size and modification time: a disk "
            "error, or an edit that kept both); not uploaded. `iqb cache verify` re-reads "
            "the cache; `dbt build --full-refresh` re-writes the marts"
        )
    with log.span("upload", up.key, remote.url_for(up.key, up.sha256)) as span:
        created = remote.upload(up.path, up.key, up.sha256)
        span.bytes = up.size if created else 0
    return created


def publish(
    artifacts: Path,
    remote: Remote,
    states: StateStore,
    plan: Plan,
    report: PushReport,
    log: SpanLog,
) -> None:
    """Keep and publish the new manifest when it changes anything; keep a local copy of
    what is published (``state/manifest.json``)."""
    data = document(plan.previous)
    if plan.changes:
        with log.span("publish", MANIFEST, remote.url_for_manifest()) as span:
            done = publish_state(
                remote, plan.new, plan.generation, state_id_of(plan.previous), log=log, store=states
            )
            span.bytes = len(done.data)
        data, report.generation, report.state = done.data, done.generation, done.info
        report.published = True
    local_copy = ArtifactPaths(artifacts).manifest
    if not local_copy.is_file() or local_copy.read_bytes() != data:
        with atomic_path(local_copy) as tmp:
            tmp.write_bytes(data)


def retain(
    remote: Remote,
    states: StateStore,
    new: Manifest,
    current: str | None,
    started: datetime,
    keep_days: int,
    keep_last: int,
    report: PushReport,
    pending: str | None = None,
    log: SpanLog | None = None,
) -> None:
    """``--delete``: prune kept states past retention, then delete the objects neither
    the new manifest nor a kept one names, older than this push (younger ones may
    belong to a push running right now). Without ``log``, a dry run: only listed."""
    kept = apply_retention(
        remote,
        current=current,
        keep_days=keep_days,
        keep_last=keep_last,
        dry_run=log is None,
        pending=pending,
        log=log,
        store=states,
    )
    report.pruned = kept.pruned
    keep = {rec.url for rec in new.files.values()} | kept.protected_urls
    report.garbage = [
        obj for obj in remote.objects() if obj.url not in keep and obj.created < started
    ]
    if log is None:
        return
    for obj in report.garbage:
        with log.span("delete", obj.name, obj.url) as span:
            span.bytes = obj.size
            remote.delete(obj)
