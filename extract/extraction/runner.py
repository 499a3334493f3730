"""Run the matrix: for each entry, local cache -> remote cache -> engine, in parallel.

One failed entry never stops the others; the summary names every failure. Two
exceptions stop the run: a read-only or full disk (every other entry would fail
the same way, after paying for its query). Decisions per entry:

- usable (present or unverified) is skipped, except a synthetic entry when the
  engine is BigQuery: synthetic data never passes for real;
- corrupt is re-made, without ``--force``;
- stale is re-made only with ``--refresh-stale``;
- after taking the entry lock, an entry that some run finished *after this run
  started* is skipped, even with ``--force``: two concurrent runs (on BigQuery:
  two bills) never query the same entry twice;
- a period without input is "no input", not an empty entry (nothing is written);
- when the remote cannot be used, the embedded engine computes what it would
  have given (the CLI says so once); a billing engine runs nothing in its place
  and each entry fails naming ``--no-remote``.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from extract import defaults
from extract.cache.catalog import SYNTHETIC
from extract.cache.hashindex import HashIndex
from extract.cache.layout import Entry
from extract.cache.state import EntryState, EntryStatus, entry_status
from extract.cache.store import (
    LEFT_OUT_STAT,
    LOCK_TIMEOUT,
    TMP_SUFFIX,
    final_name,
    lock_for,
    remove_leftovers,
    write_entry,
)
from extract.cache.templates import template_text
from extract.extraction.engines import CostEstimator, Engine, NoInputError, Query

# A disk that cannot take writes fails every entry alike: stop instead of paying for each.
DISK_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT})


class RemoteCache(Protocol):
    """Somewhere an entry may already exist; ``fetch`` installs it locally if so."""

    def fetch(self, entry: Entry, artifacts: Path) -> bool: ...

    def holds(self, entry: Entry) -> bool:
        """Whether ``fetch`` would install a current copy (the dry run asks; nothing moves)."""
        ...


class Outcome(StrEnum):
    DONE = "done"
    PULLED = "pulled"
    SKIPPED = "skipped"
    STALE = "stale"
    PENDING = "pending"  # dry run: would run
    WOULD_PULL = "would pull"  # dry run: the remote holds it, no query needed
    NO_INPUT = "no input"  # the engine has no data for the period: nothing written
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
    # measurements the query left out as NaN, infinite or out of range (stats.json)
    left_out: int = 0
    fatal: bool = False  # a disk error: the run stopped here


@dataclass
class RunOptions:
    force: bool = False
    refresh_stale: bool = False
    dry_run: bool = False
    jobs: int = defaults.LOCAL_JOBS
    remote: RemoteCache | None = None
    lock_timeout: float = LOCK_TIMEOUT
    # When this run started (set by run_matrix): entries finished since are not re-run.
    started_ns: int = 0
    # One hash index for the run (set by run_matrix), saved at its end: a cached entry's
    # file is read once, not on every run.
    index: HashIndex | None = None
    # Why the remote could not be used (the first reason) and for how many entries: the
    # CLI says so once.
    remote_problem: str = ""
    remote_fallbacks: int = 0
    remote_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Summary:
    reports: list[EntryReport] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(r.outcome == outcome for r in self.reports)

    @property
    def failed(self) -> list[EntryReport]:
        return [r for r in self.reports if r.outcome == Outcome.FAILED]

    @property
    def no_input(self) -> list[EntryReport]:
        return [r for r in self.reports if r.outcome == Outcome.NO_INPUT]

    @property
    def fatal(self) -> EntryReport | None:
        return next((r for r in self.reports if r.fatal), None)


# Engines that compute from local files and bill nothing: when the remote cannot be
# used, they compute what it would have given. Any other engine (BigQuery) is never
# run in its place: the remote was meant to save that bill.
LOCAL_ENGINES = frozenset({"duckdb"})
NO_REMOTE_HINT = "pass --no-remote to run without it"


class RemoteUnusable(Exception):
    """The remote failed and the engine is not one to fall back on; the message says what to do."""


def _ask_remote(opts: RunOptions, engine: Engine, ask: Callable[[], bool]) -> bool:
    """The remote's answer to ``ask``; False (compute it here) when the remote failed and
    the engine is local. A billing engine's entry raises :class:`RemoteUnusable`.

    Each entry asks again: one entry's bad copy must not keep the others from the
    remote (a manifest that cannot be read fails every ask at once, without the network).
    """
    try:
        return ask()
    except Exception as err:  # a remote that cannot be read, or this entry's copy: below
        problem = f"{type(err).__name__}: {err}"
    with opts.remote_lock:
        opts.remote_problem = opts.remote_problem or problem
        opts.remote_fallbacks += 1
    if engine.name in LOCAL_ENGINES:
        return False
    raise RemoteUnusable(
        f"{problem}; nothing was run on {engine.name}, which bills each query "
        f"the remote could have saved: make the remote reachable, or {NO_REMOTE_HINT}"
    )


def _usable_for(status: EntryStatus, engine: Engine) -> bool:
    """Usable, and not synthetic when real data is being asked for (BigQuery)."""
    return status.state.usable and not (
        engine.name == "bigquery" and status.source_kind == SYNTHETIC
    )


def _decide(entry: Entry, artifacts: Path, opts: RunOptions, engine: Engine) -> Outcome | None:
    """What to do without running: an outcome, or None to run the query."""
    if opts.force:
        return None
    status = entry_status(entry, artifacts, opts.index)
    if _usable_for(status, engine):
        return Outcome.SKIPPED
    if status.state == EntryState.STALE and not opts.refresh_stale:
        return Outcome.STALE
    return None


def _made_since_start(entry: Entry, artifacts: Path, opts: RunOptions, engine: Engine) -> bool:
    """Another run finished this entry after this run started (checked under the lock)."""
    try:
        written = entry.stats_path(artifacts).stat().st_mtime_ns
    except OSError:
        return False
    return written >= opts.started_ns and _usable_for(
        entry_status(entry, artifacts, opts.index), engine
    )


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


def disk_problem(err: BaseException, where: Path | None = None) -> str | None:
    """The one-line reason when ``err`` means the disk takes no writes, else None.

    Names the file (the final one, not its hidden temp file), or ``where`` when
    the error does not say (pyarrow's writer).
    """
    if not (isinstance(err, OSError) and err.errno in DISK_ERRNOS):
        return None
    target = Path(err.filename) if isinstance(err.filename, str) else where
    if target is not None and target.name.startswith(".") and target.name.endswith(TMP_SUFFIX):
        target = target.with_name(final_name(target))
    return f"cannot write {target or 'the artifacts'}: {os.strerror(err.errno or 0)}"


def run_entry(entry: Entry, engine: Engine, artifacts: Path, opts: RunOptions) -> EntryReport:
    outcome = _decide(entry, artifacts, opts, engine)
    if outcome is not None:
        return EntryReport(entry, outcome)
    if opts.dry_run:
        remote = opts.remote
        if remote is not None and not opts.force:
            try:
                if _ask_remote(opts, engine, lambda: remote.holds(entry)):
                    return EntryReport(entry, Outcome.WOULD_PULL, scan_bytes=0)
            except RemoteUnusable as err:  # price nothing the remote may hold
                return EntryReport(entry, Outcome.FAILED, error=str(err))
        return _dry_run(entry, engine)
    t0 = time.monotonic()
    try:
        with lock_for(entry, artifacts, timeout=opts.lock_timeout):
            # Another run may have finished this entry while we waited for the lock.
            if _made_since_start(entry, artifacts, opts, engine):
                return EntryReport(entry, Outcome.SKIPPED)
            outcome = _decide(entry, artifacts, opts, engine) if not opts.force else None
            if outcome is not None:
                return EntryReport(entry, outcome)
            remove_leftovers(entry.dir(artifacts))
            state = entry_status(entry, artifacts, opts.index).state
            source = opts.remote
            if (
                source is not None
                and not opts.force
                and state != EntryState.STALE
                and _ask_remote(opts, engine, lambda: source.fetch(entry, artifacts))
            ):
                return EntryReport(entry, Outcome.PULLED, seconds=time.monotonic() - t0)
            started = datetime.now(UTC)
            result = engine.run(_query(entry))
            written = write_entry(
                entry, artifacts, result.batches, result.stats, engine.name, started
            )
        return EntryReport(
            entry,
            Outcome.DONE,
            written.rows,
            written.bytes,
            time.monotonic() - t0,
            left_out=int(written.stats.get(LEFT_OUT_STAT) or 0),
        )
    except NoInputError as err:
        return EntryReport(entry, Outcome.NO_INPUT, seconds=time.monotonic() - t0, error=str(err))
    except RemoteUnusable as err:
        return EntryReport(entry, Outcome.FAILED, seconds=time.monotonic() - t0, error=str(err))
    except Exception as err:  # one entry's failure must not stop the others
        disk = disk_problem(err, entry.data_path(artifacts))
        return EntryReport(
            entry,
            Outcome.FAILED,
            seconds=time.monotonic() - t0,
            error=disk or f"{type(err).__name__}: {err}",
            fatal=disk is not None,
        )


def run_matrix(
    entries: list[Entry],
    engine: Engine,
    artifacts: Path,
    opts: RunOptions,
    on_done: Callable[[EntryReport], None] | None = None,
) -> Summary:
    """Run every entry with at most ``opts.jobs`` at once; reports keep matrix order."""
    summary = Summary()
    reports: dict[int, EntryReport] = {}
    lock = threading.Lock()
    stop = threading.Event()
    opts.started_ns = opts.started_ns or time.time_ns()
    opts.index = opts.index or HashIndex(artifacts)

    def one(entry: Entry) -> EntryReport | None:
        if stop.is_set():
            return None  # the disk failed: not tried
        report = run_entry(entry, engine, artifacts, opts)
        if report.fatal:
            stop.set()
        return report

    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        futures = {pool.submit(one, e): i for i, e in enumerate(entries)}
        for future in as_completed(futures):
            report = future.result()
            if report is None:
                continue
            with lock:
                reports[futures[future]] = report
            if on_done:
                on_done(report)
    summary.reports = [reports[i] for i in range(len(entries)) if i in reports]
    opts.index.save()  # not saved on a read-only or full disk: it is only a cache
    return summary
