"""Run the matrix: for each entry, local cache -> remote cache -> engine, in parallel.

One failed entry never stops the others; the summary names every failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from extract.cache.layout import Entry
from extract.cache.store import (
    EntryState,
    entry_state,
    lock_for,
    remove_leftovers,
    template_text,
    write_entry,
)
from extract.engines import CostEstimator, Engine, Query


class RemoteCache(Protocol):
    """Somewhere an entry may already exist; ``fetch`` installs it locally if so."""

    def fetch(self, entry: Entry, artifacts: Path) -> bool: ...


class Outcome(StrEnum):
    DONE = "done"
    PULLED = "pulled"
    SKIPPED = "skipped"
    STALE = "stale"
    PENDING = "pending"  # dry run: would run
    FAILED = "failed"


@dataclass
class EntryReport:
    entry: Entry
    outcome: Outcome
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str = ""
    scan_bytes: int | None = None  # dry run: what the engine would scan, when it can tell


@dataclass
class RunOptions:
    force: bool = False
    refresh_stale: bool = False
    dry_run: bool = False
    jobs: int = 2
    remote: RemoteCache | None = None
    lock_timeout: float = 600.0


@dataclass
class Summary:
    reports: list[EntryReport] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(r.outcome == outcome for r in self.reports)

    @property
    def failed(self) -> list[EntryReport]:
        return [r for r in self.reports if r.outcome == Outcome.FAILED]


def _decide(entry: Entry, artifacts: Path, opts: RunOptions) -> Outcome | None:
    """What to do without running: an outcome, or None to run the query."""
    if opts.force:
        return None
    state = entry_state(entry, artifacts)
    if state == EntryState.PRESENT:
        return Outcome.SKIPPED
    if state == EntryState.STALE and not opts.refresh_stale:
        return Outcome.STALE
    return None


def _query(entry: Entry) -> Query:
    return Query(entry.dataset.name, template_text(entry.dataset), entry.start, entry.end)


def _dry_run(entry: Entry, engine: Engine) -> EntryReport:
    """Pending; priced by the engine when it can (a BigQuery dry run is free)."""
    if not isinstance(engine, CostEstimator):
        return EntryReport(entry, Outcome.PENDING)
    try:
        return EntryReport(entry, Outcome.PENDING, scan_bytes=engine.estimate(_query(entry)))
    except Exception as err:  # one entry's failure must not stop the others
        return EntryReport(entry, Outcome.FAILED, error=f"{type(err).__name__}: {err}")


def run_entry(entry: Entry, engine: Engine, artifacts: Path, opts: RunOptions) -> EntryReport:
    outcome = _decide(entry, artifacts, opts)
    if outcome is not None:
        return EntryReport(entry, outcome)
    if opts.dry_run:
        return _dry_run(entry, engine)
    t0 = time.monotonic()
    try:
        with lock_for(entry, artifacts, timeout=opts.lock_timeout):
            # Another process may have finished this entry while we waited.
            outcome = _decide(entry, artifacts, opts) if not opts.force else None
            if outcome is not None:
                return EntryReport(entry, outcome)
            remove_leftovers(entry.dir(artifacts))
            stale = entry_state(entry, artifacts) == EntryState.STALE
            if opts.remote is not None and not opts.force and not stale and \
                    opts.remote.fetch(entry, artifacts):
                return EntryReport(entry, Outcome.PULLED, seconds=time.monotonic() - t0)
            started = datetime.now(UTC)
            result = engine.run(_query(entry))
            written = write_entry(entry, artifacts, result.batches, result.stats, engine.name,
                                  started)
        return EntryReport(entry, Outcome.DONE, written.rows, written.bytes,
                           time.monotonic() - t0)
    except Exception as err:  # one entry's failure must not stop the others
        return EntryReport(entry, Outcome.FAILED, seconds=time.monotonic() - t0,
                           error=f"{type(err).__name__}: {err}")


def run_matrix(entries: list[Entry], engine: Engine, artifacts: Path, opts: RunOptions,
               on_done: Callable[[EntryReport], None] | None = None) -> Summary:
    """Run every entry with at most ``opts.jobs`` at once; reports keep matrix order."""
    summary = Summary()
    reports: dict[int, EntryReport] = {}
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        futures = {pool.submit(run_entry, e, engine, artifacts, opts): i
                   for i, e in enumerate(entries)}
        for future in as_completed(futures):
            report = future.result()
            with lock:
                reports[futures[future]] = report
            if on_done:
                on_done(report)
    summary.reports = [reports[i] for i in range(len(entries))]
    return summary
