"""Pull: install the files of a manifest locally, verified and atomic.

Every file is installed by ``install.py``: streamed into a hidden temp file
beside its destination while its SHA256 (and size, when the manifest has one)
is computed; only a match is moved into place with ``os.replace``. A failed
transfer is retried with
exponential backoff; an integrity failure is not (the bytes are wrong, not
late). Files already present with the manifest's hash are skipped, so an
interrupted pull simply runs again. Cache entries are installed under the
entry lock the extractor uses, data first and ``stats.json`` last, so an entry
never counts as present with half of it new.

A cache entry whose stats.json is upstream's (no hash of its data in it) gets
the SHA-256 it was just verified against recorded (``extract.cache.verified``),
so it counts as present, verified, from then on. A stats.json that is not a
JSON object is refused like any other integrity failure. Temp files of a pull
that was killed are removed by the next one (under the lock of their file, so
never one a running pull is writing), wherever they are: cache, marts, snapshots.
Before the first download, each host the files come from is reached once:
one that cannot be resolved or reached fails the pull within seconds, with one
message, instead of every file retrying for the retry deadline.

``ManifestRemoteCache`` is the same install path behind the runner's
``RemoteCache`` seam: ``iqb extract run`` fetches an entry from the manifest
before it would run the engine.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from extract import defaults
from extract.cache.catalog import SYNTHETIC, source_kind
from extract.cache.hashindex import HashIndex, file_sha256
from extract.cache.layout import DATA_FILE, STATS_FILE, Entry, parse_cache_key
from extract.cache.store import (
    LOCK_TIMEOUT,
    lock_for,
    lock_for_file,
    remove_leftovers,
    sweep_leftovers,
)
from extract.cache.templates import is_current
from extract.paths import CACHE_DIR, PUBLISHED_TREES
from extract.sync.compare import FileState, Selection, compare
from extract.sync.install import (
    Fetcher,
    IntegrityError,
    install_entry,
    install_file,
    record_verified,
)
from extract.sync.logs import SpanLog
from extract.sync.manifest import Manifest, ManifestError
from extract.sync.pulled import Pulled, discard_undecided, read_pulled, write_pulled
from extract.sync.redact import redact
from extract.sync.remote import SyncError, Transfer
from extract.sync.source import Source, check_reachable, load_manifest, source_for


@dataclass
class PullReport:
    downloaded: list[str] = field(default_factory=list)
    bytes: int = 0
    same: int = 0
    kept: list[str] = field(default_factory=list)  # changed locally, not replaced
    # downloaded by an earlier pull of this manifest, no longer named by it: removed
    withdrawn: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    # of the failures, those whose bytes are not the manifest's: a retry cannot mend them
    mismatched: list[str] = field(default_factory=list)
    # state/pulled.json was unreadable: moved here by this pull (pulled.py)
    moved: Path | None = None
    # moved-aside records not decided on, and the local files they leave unjudged
    undecided: list[Path] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)
    log: Path | None = None


def _tasks(manifest: Manifest, pending: set[str]) -> list[tuple[Entry | None, dict[str, str]]]:
    """Group pending keys: one task per cache entry (file name -> key), one per other file.

    A changed data.parquet always travels with its stats.json, which the install
    replaces last.
    """
    entries: dict[Entry, dict[str, str]] = {}
    others: list[tuple[Entry | None, dict[str, str]]] = []
    for key in sorted(pending):
        parsed = parse_cache_key(key)
        if parsed is None:
            others.append((None, {key: key}))
            continue
        entry, name = parsed
        entries.setdefault(entry, {})[name] = key
    for entry, files in entries.items():
        stats_key = f"{entry.key}/{STATS_FILE}"
        if DATA_FILE in files and stats_key in manifest.files:
            files[STATS_FILE] = stats_key
    return [*((e, f) for e, f in entries.items()), *others]


def pull(
    artifacts: Path,
    manifest: Manifest,
    source: Source,
    transfer: Transfer,
    *,
    selection: Selection | None = None,
    jobs: int = defaults.NETWORK_JOBS,
    force: bool = False,
    refused: Callable[[str], str | None] | None = None,
    on_done: Callable[[str], None] | None = None,
    origin: str | None = None,
    accept_local: bool = False,
) -> PullReport:
    """Install the selected files of ``manifest`` that are missing or (with force) differ.

    ``refused(url)`` names a URL that must not be read; if any selected file has
    one, nothing is downloaded at all. ``origin`` (the manifest's location, as the
    user named it): files earlier pulls of it downloaded follow it (pulled.py).
    ``accept_local``: the user's answer to an unreadable record of those files;
    what it does not name is local work.
    """
    sweep_leftovers(artifacts)
    report = PullReport()
    if accept_local:
        discard_undecided(artifacts)
    record = read_pulled(artifacts, origin) if origin else Pulled()
    report.moved, report.undecided = record.moved, record.undecided
    todo = judge(artifacts, manifest, selection or Selection(), jobs, force, record, report)
    record_present(artifacts, manifest, todo)
    problems = [p for k in todo.pending if refused and (p := refused(manifest.files[k].url))]
    if problems:
        raise SyncError(
            f"{len(problems)} URL(s) refused; nothing was downloaded:\n"
            + "\n".join(f"  - {p}" for p in problems[:20])
        )
    check_reachable([manifest.files[k].url for k in todo.pending], source, transfer)
    download(artifacts, manifest, todo.pending, source, transfer, jobs, report, on_done)
    report.withdrawn = [k for k in todo.withdrawn if _remove_pulled(artifacts, k, record.files[k])]
    if origin:
        files = dict(record.files)
        files.update({k: manifest.files[k].sha256 for k in report.downloaded})
        for key in report.withdrawn:
            del files[key]
        write_pulled(artifacts, origin, files, manifest.state)
    return report


@dataclass
class Todo:
    """What a pull does to the local files it judged."""

    pending: list[str] = field(default_factory=list)  # to download
    withdrawn: list[str] = field(default_factory=list)  # pulled here, no longer named: remove
    same: list[str] = field(default_factory=list)  # already here with the manifest's hash


def judge(
    artifacts: Path,
    manifest: Manifest,
    selection: Selection,
    jobs: int,
    force: bool,
    record: Pulled,
    report: PullReport,
) -> Todo:
    """Sort every selected file: to download, kept (local work), withdrawn, or unjudged."""
    index = HashIndex(artifacts)
    pulled = record.files
    diffs, todo, only_local = [], Todo(), []
    for d in compare(manifest, artifacts, index, selection, jobs):
        if d.state != FileState.ONLY_LOCAL:
            diffs.append(d)
        elif d.key in pulled and index.sha256(d.key, artifacts / d.key) == pulled[d.key]:
            todo.withdrawn.append(d.key)  # as a pull installed it: the publisher withdrew it
        else:
            only_local.append(d.key)
    index.save()
    missing = {d.key for d in diffs if d.state == FileState.ONLY_REMOTE}
    changed = {d.key for d in diffs if d.state == FileState.CHANGED}
    # A local entry with a file missing is a leftover, not local work: replace it whole.
    incomplete = {k.rpartition("/")[0] for k in missing if parse_cache_key(k)}
    # A file still as a pull installed it is not local work either (pulled.py).
    followed = {d.key for d in diffs if d.local_sha256 and pulled.get(d.key) == d.local_sha256}
    pending = missing | {
        k for k in changed if force or k in followed or k.rpartition("/")[0] in incomplete
    }
    todo.pending = sorted(pending)
    todo.same = [d.key for d in diffs if d.state == FileState.SAME]
    report.same = len(todo.same)
    report.kept = sorted(changed - pending)
    if record.undecided:  # no record says whether these were pulled: the user decides
        report.unjudged = sorted({*report.kept, *only_local})
    return todo


def record_present(artifacts: Path, manifest: Manifest, todo: Todo) -> None:
    """Files already here with the manifest's hash are verified too: record that for
    upstream-format entries (copied in by hand, say), unless their stats.json moves."""
    pending = set(todo.pending)
    for key in todo.same:
        parsed = parse_cache_key(key)
        if parsed and parsed[1] == DATA_FILE and f"{parsed[0].key}/{STATS_FILE}" not in pending:
            with lock_for(parsed[0], artifacts, timeout=LOCK_TIMEOUT):
                record_verified(parsed[0], artifacts, manifest.files[key])


def download(
    artifacts: Path,
    manifest: Manifest,
    pending: list[str],
    source: Source,
    transfer: Transfer,
    jobs: int,
    report: PullReport,
    on_done: Callable[[str], None] | None,
) -> None:
    """Install the pending files in parallel, each cache entry under its lock; one failed
    file does not stop the others (they are listed in the report)."""
    lock = threading.Lock()
    with SpanLog(artifacts, "pull") as log, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        report.log = log.path
        fetcher = Fetcher(source, transfer, log)

        def run(entry: Entry | None, files: dict[str, str]) -> int:
            if entry is None:
                (key,) = files
                return install_file(fetcher, key, manifest.files[key], artifacts)
            with lock_for(entry, artifacts, timeout=LOCK_TIMEOUT):
                remove_leftovers(entry.dir(artifacts))
                records = {n: manifest.files[k] for n, k in files.items()}
                return install_entry(fetcher, entry, records, artifacts) or 0

        futures = {pool.submit(run, e, f): f for e, f in _tasks(manifest, set(pending))}
        for future in as_completed(futures):
            keys = sorted(futures[future].values())
            try:
                n = future.result()
            except Exception as exc:  # one failed file must not stop the others
                with lock:
                    report.failures.append((keys[0], str(exc)))
                    if isinstance(exc, IntegrityError):
                        report.mismatched.append(keys[0])
                continue
            with lock:
                report.downloaded += keys
                report.bytes += n
            for key in keys:
                if on_done:
                    on_done(key)
    report.downloaded.sort()
    report.failures.sort()


def _remove_pulled(artifacts: Path, key: str, sha256: str) -> bool:
    """Remove a withdrawn file under its lock (a cache entry's, or the file's own) if it
    is still the bytes that were pulled (hashed again: a writer may have come since),
    and the folders it leaves empty below the tree's own; False when it was kept."""
    path = artifacts / key
    parsed = parse_cache_key(key)
    lock = (
        lock_for(parsed[0], artifacts, timeout=LOCK_TIMEOUT)
        if parsed
        else lock_for_file(path, artifacts, timeout=LOCK_TIMEOUT)
    )
    with lock:
        try:
            if file_sha256(path) != sha256:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
    tops = {artifacts / tree for tree in (*PUBLISHED_TREES, CACHE_DIR)}
    folder = path.parent
    with contextlib.suppress(OSError):  # not empty, a link, gone: leave it
        while folder not in tops and artifacts in folder.parents and not folder.is_symlink():
            folder.rmdir()
            folder = folder.parent
    return True


class ManifestRemoteCache:
    """The runner's ``RemoteCache`` over a manifest: an entry found there is pulled, not run.

    The manifest is read on the first fetch, i.e. only if some entry is missing
    locally, so a fully cached run never touches the network. If it cannot be
    read, every fetch fails with that one reason (and the runner reports the
    entries as failed) instead of falling back to a possibly billed engine.
    Only entries whose stats.json names today's template hash (ours, or
    upstream's for the same dataset) are taken; an entry computed by another
    template would be stale the moment it landed.
    The runner calls ``fetch`` holding the entry lock, after the local check.
    """

    def __init__(
        self,
        manifest: str,
        artifacts: Path,
        transfer: Transfer | None = None,
        allow_http: bool = False,
        accept_synthetic: bool = True,
    ) -> None:
        self.location = manifest
        # False for `--engine bigquery`: real data is asked for, a synthetic copy is no answer
        self.accept_synthetic = accept_synthetic
        self.artifacts = artifacts
        self.transfer = transfer or Transfer()
        self.source = source_for(manifest, self.transfer, allow_http)
        self._manifest: Manifest | None = None
        self._error = ""
        self._log: SpanLog | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Manifest, Fetcher]:
        with self._lock:
            if self._manifest is None and not self._error:
                try:
                    self._manifest = load_manifest(self.location, self.source)
                    check_reachable(
                        [r.url for r in list(self._manifest.files.values())[:1]],
                        self.source,
                        self.transfer,
                    )
                except (SyncError, ManifestError) as exc:
                    self._error = redact(f"remote manifest unusable: {exc}")
            if self._error:
                raise SyncError(self._error)
            if self._log is None:
                self._log = SpanLog(self.artifacts, "pull")
            assert self._manifest is not None
            return self._manifest, Fetcher(self.source, self.transfer, self._log)

    def fetch(self, entry: Entry, artifacts: Path) -> bool:
        manifest, fetcher = self._load()
        records = {
            name: manifest.files.get(f"{entry.key}/{name}") for name in (DATA_FILE, STATS_FILE)
        }
        if not all(records.values()):
            return False
        installed = install_entry(
            fetcher,
            entry,
            {n: r for n, r in records.items() if r},
            artifacts,
            accept_stats=lambda s: self._usable(entry, s),
        )
        return installed is not None

    def _usable(self, entry: Entry, stats: dict) -> bool:
        return is_current(entry.dataset, stats) and (
            self.accept_synthetic or source_kind(stats) != SYNTHETIC
        )

    def holds(self, entry: Entry) -> bool:
        """Whether the manifest has a current copy of ``entry`` (reads only its stats.json).

        The dry run asks this: such an entry would be pulled, at no query cost.
        """
        manifest, _ = self._load()
        records = [manifest.files.get(f"{entry.key}/{name}") for name in (DATA_FILE, STATS_FILE)]
        if not all(records):
            return False
        stats_rec = records[1]
        assert stats_rec is not None
        try:
            doc = json.loads(self.source.read_bytes(stats_rec.url))
        except (SyncError, ValueError):
            return False
        return isinstance(doc, dict) and self._usable(entry, doc)

    def close(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
