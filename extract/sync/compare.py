"""Local files against a manifest: which are the same, changed, or on one side only.

Shared by ``cache status``, ``cache pull`` and ``cache verify``; the selection
(datasets, granularities, period range) narrows all three the same way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path

from extract import defaults
from extract.cache.hashindex import HashIndex
from extract.cache.layout import Entry, parse_cache_key
from extract.datasets import DATASETS_BY_NAME, GRANULARITY_LEVELS
from extract.sync.manifest import FileRecord, Manifest, publishable_files


class FileState(StrEnum):
    SAME = "same"
    CHANGED = "changed"
    ONLY_REMOTE = "only-remote"
    ONLY_LOCAL = "only-local"


def parse_day(text: str, option: str) -> date:
    """``YYYY-MM`` (first of the month) or ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(text if text.count("-") == 2 else f"{text}-01")
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a date (YYYY-MM or YYYY-MM-DD)") from None


@dataclass(frozen=True)
class Selection:
    """Which cache files an operation touches; empty means every file, cache or not.

    A period matches when it lies inside [start, end): ``--start 2024-01 --end
    2025-01`` selects the twelve months of 2024. Once any filter is given, only
    cache files can match (snapshots and marts have no dataset or period).
    """

    datasets: frozenset[str] = frozenset()
    granularities: frozenset[str] = frozenset()
    start: date | None = None
    end: date | None = None

    @classmethod
    def build(
        cls,
        datasets: list[str] | None = None,
        granularities: list[str] | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> Selection:
        """Validate user input; raise ValueError naming every unknown value."""
        problems = [
            f"--dataset: unknown dataset {d!r}" for d in datasets or [] if d not in DATASETS_BY_NAME
        ]
        problems += [
            f"--granularity: unknown granularity {g!r} (one of {', '.join(GRANULARITY_LEVELS)})"
            for g in granularities or []
            if g not in GRANULARITY_LEVELS
        ]
        days = []
        for text, option in ((start, "--start"), (end, "--end")):
            try:
                days.append(parse_day(text, option) if text else None)
            except ValueError as exc:
                problems.append(str(exc))
                days.append(None)
        if days[0] and days[1] and days[0] >= days[1]:
            problems.append(f"--start {start} is not before --end {end}")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(frozenset(datasets or ()), frozenset(granularities or ()), days[0], days[1])

    @property
    def active(self) -> bool:
        return bool(self.datasets or self.granularities or self.start or self.end)

    def matches(self, key: str) -> bool:
        if not self.active:
            return True
        parsed = parse_cache_key(key)
        return parsed is not None and self.matches_entry(parsed[0])

    def matches_entry(self, entry: Entry) -> bool:
        return (
            (not self.datasets or entry.dataset.name in self.datasets)
            and (not self.granularities or entry.dataset.granularity in self.granularities)
            and (self.start is None or entry.start >= self.start)
            and (self.end is None or entry.end <= self.end)
        )


@dataclass(frozen=True)
class FileDiff:
    key: str
    state: FileState
    local_sha256: str | None
    remote: FileRecord | None
    local_size: int | None


def compare(
    manifest: Manifest,
    artifacts: Path,
    index: HashIndex,
    selection: Selection,
    jobs: int = defaults.LOCAL_JOBS,
) -> list[FileDiff]:
    """Every selected key on either side, sorted; local hashes come from the index."""
    local = {k: p for k, p in publishable_files(artifacts).items() if selection.matches(k)}
    remote = {k: r for k, r in manifest.files.items() if selection.matches(k)}
    both = [k for k in local if k in remote]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        hashes = dict(zip(both, pool.map(lambda k: index.sha256(k, local[k]), both), strict=True))
    diffs = []
    for key in sorted(local.keys() | remote.keys()):
        rec = remote.get(key)
        size = local[key].stat().st_size if key in local else None
        if key not in local:
            state = FileState.ONLY_REMOTE
        elif rec is None:
            state = FileState.ONLY_LOCAL
        else:
            state = FileState.SAME if hashes[key] == rec.sha256 else FileState.CHANGED
        diffs.append(FileDiff(key, state, hashes.get(key), rec, size))
    return diffs
