"""Push: mirror the publishable artifacts to a bucket, manifest last.

Order of a push, and why:
1. snapshot what ``iqb.duckdb`` publishes (schema ``main``) into ``read_only/``,
   as tables: a consistent copy that nobody writes, which opens anywhere;
2. hash local files (through the hash index: unchanged files are not re-read);
3. read the published manifest and its generation;
4. upload new and changed files, in parallel, to content-addressed objects;
5. only when every upload succeeded, keep a create-only copy of the new
   manifest under ``state/manifests/`` (``history``) and publish the same bytes
   with ``if_generation_match`` = the generation read in 3 (a concurrent push
   makes this fail instead of silently dropping its files);
6. with ``--delete``, prune kept manifests past retention, then remove the
   objects that neither the new manifest nor any kept one names.
A build's marts and report are never mixed with another build's: a push that
uploads some while the manifest keeps others this build lacks is refused.
Before any of it, cache entries made from synthetic data (``iqb sample``), and
mart files built from such entries, are refused unless ``allow_synthetic``: a
shared bucket must never serve them as M-Lab measurements.
A push killed before 5 leaves the old manifest, whose objects are untouched;
the rerun finds the objects it already uploaded and reuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extract.cache.catalog import SYNTHETIC, source_kind
from extract.cache.hashindex import HashIndex, file_sha256
from extract.cache.layout import STATS_FILE, parse_cache_key
from extract.cache.store import atomic_path, read_stats
from extract.paths import DATABASE, MANIFEST, MARTS, REPORT, ArtifactPaths
from extract.sync.history import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_LAST, apply_retention
from extract.sync.logs import SpanLog
from extract.sync.manifest import (
    FileRecord,
    Manifest,
    ManifestError,
    parse_manifest,
    publishable_files,
)
from extract.sync.remote import GcsRemote, Remote, StoredObject, SyncError, bullets
from extract.sync.snapshot import snapshot_database
from extract.sync.states import StateInfo, document, new_state_id, publish_state, state_id_of
from extract.transform.marts import COMMIT_FILE

# The trees one dbt build (and its `iqb report --html`) writes whole.
BUILD_TREES = (MARTS, REPORT)


@dataclass(frozen=True)
class Upload:
    key: str
    path: Path
    sha256: str
    size: int
    replaces: bool  # the manifest had this key with other content


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


def read_published(remote: Remote) -> tuple[Manifest, int]:
    data, generation = remote.read_manifest()
    if data is None:
        return Manifest(), 0
    try:
        return parse_manifest(data, f"{remote.label}/{MANIFEST}"), generation
    except ManifestError as exc:
        raise SyncError(
            f"{exc}\nThe published manifest is unusable; fix or remove it "
            "before pushing, or put a kept state back with `iqb sync rollback "
            "<id>` (`iqb sync history` lists them)."
        ) from None


class SyntheticRefused(SyncError):
    """Synthetic entries would be published; nothing was uploaded (exit 2: a usage error)."""


def synthetic_marts(artifacts: Path, keys: list[str]) -> list[str]:
    """Mart files among ``keys`` with a row built from synthetic entries (``is_synthetic``).

    The cache check alone misses marts built from synthetic entries that have
    since left the cache (moved away, or replaced by real ones without a build).
    """
    found = []
    for key in keys:
        if not (key.startswith(f"{MARTS}/") and key.endswith(".parquet")):
            continue
        try:
            file = pq.ParquetFile(artifacts / key)
            if file.schema_arrow.get_field_index("is_synthetic") < 0:
                continue
            flags = file.read(columns=["is_synthetic"]).column(0)
        except (OSError, pa.ArrowException):
            continue  # not a mart the build wrote: nothing says it is synthetic
        if pc.any(flags).as_py():
            found.append(key)
    return found


def synthetic_entries(artifacts: Path, keys: list[str]) -> list[str]:
    """Entry keys among ``keys`` whose stats.json says the data is synthetic."""
    found = []
    for key in keys:
        parsed = parse_cache_key(key)
        if parsed is None or parsed[1] != STATS_FILE:
            continue
        stats = read_stats(parsed[0], artifacts)
        if stats is not None and source_kind(stats) == SYNTHETIC:
            found.append(parsed[0].key)
    return found


def push(
    artifacts: Path,
    remote: GcsRemote,  # not any Remote: the kept states (extract/sync/states.py) are GCS objects
    *,
    jobs: int = 4,
    dry_run: bool = False,
    delete: bool = False,
    allow_synthetic: bool = False,
    on_upload: Callable[[Upload], None] | None = None,
    keep_days: int = DEFAULT_KEEP_DAYS,
    keep_last: int = DEFAULT_KEEP_LAST,
) -> PushReport:
    """Push the artifacts under ``artifacts`` to ``remote``; see the module docstring."""
    started = datetime.now(UTC)
    report = PushReport()
    # extract/transform/marts.py: the database may be switched, the public names not yet
    half_published = sorted(ArtifactPaths(artifacts).publishing.glob(f"*/{COMMIT_FILE}"))
    if half_published:
        raise SyncError(
            f"a dbt build was stopped while publishing its marts "
            f"({half_published[0].parent}); run `dbt build` (it finishes the publish) and "
            "push again"
        )
    keys = [] if allow_synthetic else list(publishable_files(artifacts))
    entries, mart_files = synthetic_entries(artifacts, keys), synthetic_marts(artifacts, keys)
    if entries or mart_files:
        synthetic = entries + mart_files
        what = []
        if entries:
            are = "y is" if len(entries) == 1 else "ies are"
            what.append(
                f"{len(entries)} cache entr{are} synthetic (made from `iqb sample` data; "
                "stats.json source.kind is 'synthetic')"
            )
        if mart_files:
            what.append(
                f"{len(mart_files)} mart file(s) hold rows built from synthetic entries "
                "(is_synthetic)"
            )
        raise SyntheticRefused(
            f"{'; '.join(what)}; refusing to publish them as real measurements, "
            f"nothing was uploaded:\n{bullets(synthetic)}\nRe-make them from real "
            "data (`iqb extract run --engine bigquery`, then `dbt build`), or pass "
            "--allow-synthetic to publish them labelled as synthetic."
        )
    index = HashIndex(artifacts)
    report.snapshot = snapshot_database(artifacts, index, dry_run)
    local = publishable_files(artifacts)
    if delete and not local:
        raise SyncError(
            f"{artifacts} holds no files to publish; refusing --delete, which "
            "would empty the bucket's manifest (wrong --artifacts?)"
        )
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        hashes = dict(zip(local, pool.map(lambda k: index.sha256(k, local[k]), local), strict=True))
    if dry_run and report.snapshot:  # not written: plan it from the live file it would copy
        local[report.snapshot] = ArtifactPaths(artifacts).database
        hashes[report.snapshot] = index.sha256(DATABASE, local[report.snapshot])
    index.save(keep=[DATABASE, *hashes])

    previous, generation = read_published(remote)
    report.generation = generation
    report.replaced = StateInfo.from_json(previous.state)
    new = Manifest()
    for key, path in local.items():
        rec = previous.files.get(key)
        size = path.stat().st_size
        if rec is not None and rec.sha256 == hashes[key]:
            new.files[key] = FileRecord(rec.sha256, rec.url, size)
            report.unchanged += 1
        else:
            report.uploads.append(Upload(key, path, hashes[key], size, rec is not None))
            new.files[key] = FileRecord(hashes[key], remote.url_for(key, hashes[key]), size)
    report.remote_only = sorted(k for k in previous.files if k not in local)
    # A build's marts and report are one unit. Uploading some of them while the
    # manifest keeps files of the published build that this one lacks would serve
    # two builds side by side (periods of two min_sample_counts, say, and a report
    # of neither): refused, before anything is uploaded.
    if not delete:
        ours = sorted({u.key.split("/", 1)[0] for u in report.uploads} & set(BUILD_TREES))
        theirs = [k for k in report.remote_only if k.split("/", 1)[0] in ours]
        if theirs:
            raise SyncError(
                f"this push uploads files of {', '.join(f'{t}/' for t in ours)} but the "
                f"published build has {len(theirs)} file(s) there that this build does not: "
                "publishing would mix two builds; nothing was uploaded. Build from the "
                "whole cache (`iqb cache pull`, then `dbt build`) and push again, or push "
                f"--delete to publish this build alone:\n{bullets(theirs)}"
            )
    if not delete:
        for key in report.remote_only:
            new.files[key] = previous.files[key]
    if dry_run:
        if delete:
            changes = generation == 0 or new.dumps() != previous.dumps()
            pending = new_state_id() if changes else None
            # the state this push would publish becomes the current one
            kept = apply_retention(
                remote,
                current=None if pending else state_id_of(previous),
                keep_days=keep_days,
                keep_last=keep_last,
                dry_run=True,
                pending=pending,
            )
            report.pruned = kept.pruned
            report.garbage = _garbage(remote, new, started, kept.protected_urls)
        return report

    with SpanLog(artifacts, "push") as log:
        report.log = log.path
        failures = _upload_all(remote, report, log, jobs, on_upload)
        if failures:
            shown = "\n".join(f"  - {k}: {e}" for k, e in failures[:20])
            raise SyncError(
                f"{len(failures)} upload(s) failed; the published manifest was "
                f"left as it was (see {log.path}):\n{shown}"
            )
        data = document(previous)
        if generation == 0 or new.dumps() != previous.dumps():
            with log.span("publish", MANIFEST, remote.url_for_manifest()) as span:
                done = publish_state(
                    remote,
                    new,
                    generation,
                    state_id_of(previous),
                    log=log,
                )
                span.bytes = len(done.data)
            data, report.generation, report.state = done.data, done.generation, done.info
            report.published = True
        local_copy = ArtifactPaths(artifacts).manifest
        if not local_copy.is_file() or local_copy.read_bytes() != data:
            with atomic_path(local_copy) as tmp:
                tmp.write_bytes(data)
        if delete:
            current = report.state.id if report.state else state_id_of(previous)
            kept = apply_retention(
                remote,
                current=current,
                keep_days=keep_days,
                keep_last=keep_last,
                dry_run=False,
                log=log,
            )
            report.pruned = kept.pruned
            report.garbage = _garbage(remote, new, started, kept.protected_urls)
            for obj in report.garbage:
                with log.span("delete", obj.name, obj.url) as span:
                    span.bytes = obj.size
                    remote.delete(obj)
    return report


def _upload_all(
    remote: Remote,
    report: PushReport,
    log: SpanLog,
    jobs: int,
    on_upload: Callable[[Upload], None] | None,
) -> list[tuple[str, str]]:
    """Upload in parallel, each file once; return the failures."""

    def one(up: Upload) -> bool:
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

    failures: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, up): up for up in report.uploads}
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
    return sorted(failures)


def _garbage(
    remote: Remote, new: Manifest, started: datetime, protected: set[str]
) -> list[StoredObject]:
    """Objects neither the new manifest nor a kept one (``protected``) names, older than
    this push (younger ones may belong to a push running right now)."""
    keep = {rec.url for rec in new.files.values()} | protected
    return [obj for obj in remote.objects() if obj.url not in keep and obj.created < started]
