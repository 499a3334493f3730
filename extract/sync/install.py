"""Installing one file or one cache entry of a manifest: downloaded, verified, atomic.

Every file is streamed into a hidden temp file beside its destination while
its SHA256 (and size, when the manifest has one) is computed; only a match is
moved into place with ``os.replace``. A failed transfer is retried with
exponential backoff; an integrity failure is not (the bytes are wrong, not
late). A cache entry is installed data first and ``stats.json`` last (the
caller holds the entry lock), so it never counts as present with half of it
new; one whose stats.json is upstream's (no hash of its data in it) gets the
SHA-256 it was verified against recorded (``extract.cache.verified``).
Which files to install, and when: ``pull.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from extract.cache import verified
from extract.cache.layout import DATA_FILE, STATS_FILE, Entry
from extract.cache.store import LOCK_TIMEOUT, atomic_path, lock_for_file, remove_leftovers
from extract.sync.logs import SpanLog
from extract.sync.manifest import FileRecord
from extract.sync.remote import SyncError, Transfer
from extract.sync.source import Source


class IntegrityError(SyncError):
    """Downloaded bytes do not match the manifest; nothing was installed."""


class _Declined(Exception):
    """The fetched stats.json says the remote entry is not usable here."""


@dataclass
class Fetcher:
    """Downloads one manifest file into a path, verified, with retries and a span each."""

    source: Source
    transfer: Transfer
    log: SpanLog

    def download(self, key: str, rec: FileRecord, dest: Path) -> int:
        def attempt() -> int:
            digest, size = hashlib.sha256(), 0
            with open(dest, "wb") as fh:  # truncates what a failed attempt left
                for chunk in self.source.stream(rec.url):
                    digest.update(chunk)
                    fh.write(chunk)
                    size += len(chunk)
                    if rec.size is not None and size > rec.size:
                        break  # more than promised: stop reading, report below
            if rec.size is not None and size > rec.size:
                raise IntegrityError(
                    f"{key}: {rec.url} sent more than the {rec.size} bytes "
                    "the manifest lists; not installed"
                )
            if rec.size is not None and size < rec.size:
                raise IntegrityError(
                    f"{key}: got {size} bytes from {rec.url}, the manifest "
                    f"says {rec.size}; not installed"
                )
            if digest.hexdigest() != rec.sha256:
                raise IntegrityError(
                    f"{key}: sha256 of {rec.url} is {digest.hexdigest()}, "
                    f"the manifest says {rec.sha256}; not installed"
                )
            return size

        with self.log.span("download", key, rec.url) as span:
            span.bytes = self.transfer.call(f"downloading {key} from {rec.url}", attempt)
        return span.bytes


def _json_object(path: Path) -> dict:
    """The JSON object in ``path``; an empty one if it holds anything else."""
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def install_file(fetcher: Fetcher, key: str, rec: FileRecord, artifacts: Path) -> int:
    """A file outside the cache (marts, snapshots), under its own lock."""
    final = artifacts / key
    with lock_for_file(final, artifacts, timeout=LOCK_TIMEOUT):
        remove_leftovers(final.parent, final.name)
        with atomic_path(final) as tmp:
            return fetcher.download(key, rec, tmp)


def install_entry(
    fetcher: Fetcher,
    entry: Entry,
    records: dict[str, FileRecord],
    artifacts: Path,
    accept_stats: Callable[[dict], bool] | None = None,
) -> int | None:
    """Install an entry's files (caller holds the entry lock); None if ``accept_stats`` says no.

    Both files are downloaded and verified before either is replaced. When the
    data changes, the old stats.json is removed first and the new one moved in
    last, so a reader sees the old entry, no entry, or the new entry.
    """
    data_rec, stats_rec = records.get(DATA_FILE), records.get(STATS_FILE)
    total = 0
    try:
        with contextlib.ExitStack() as stack:  # exits in reverse: data replaced, then stats
            tmp_stats = (
                stack.enter_context(atomic_path(entry.stats_path(artifacts))) if stats_rec else None
            )
            tmp_data = (
                stack.enter_context(atomic_path(entry.data_path(artifacts))) if data_rec else None
            )
            if stats_rec and tmp_stats:
                total += fetcher.download(f"{entry.key}/{STATS_FILE}", stats_rec, tmp_stats)
                doc = _json_object(tmp_stats)
                if not doc:
                    raise IntegrityError(
                        f"{entry.key}/{STATS_FILE}: the manifest's file is not "
                        "a JSON object; the entry was not installed"
                    )
                if accept_stats and not accept_stats(doc):
                    raise _Declined
            if data_rec and tmp_data:
                total += fetcher.download(f"{entry.key}/{DATA_FILE}", data_rec, tmp_data)
                if stats_rec:
                    entry.stats_path(artifacts).unlink(missing_ok=True)
    except _Declined:
        return None
    if data_rec:
        record_verified(entry, artifacts, data_rec)
    return total


def record_verified(entry: Entry, artifacts: Path, data_rec: FileRecord) -> None:
    """For upstream's stats.json (no hash): keep the hash the data was verified against."""
    stats_path = entry.stats_path(artifacts)
    try:
        raw = stats_path.read_bytes()
    except FileNotFoundError:
        return
    doc = _json_object(stats_path)
    if (
        doc
        and not isinstance(doc.get("sha256"), str)
        and verified.lookup(entry, artifacts, raw) is None
    ):
        size = entry.data_path(artifacts).stat().st_size
        verified.record(
            entry, artifacts, raw, size, data_rec.sha256, "iqb cache pull (SHA-256 of the manifest)"
        )
