"""One entry's state for ``cache status`` and ``extract run``: the catalog plus the template.

- **missing**: neither file is there;
- **corrupt**: the catalog found the data file is not what its record says
  (or the record is missing or broken); ``extract run`` re-makes it;
- **stale**: readable, but made by another query than today's template;
- **present** / **unverified**: usable; *unverified* is upstream's format whose
  hash nothing has checked yet (``iqb cache verify`` records it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from extract.cache.catalog import Integrity, check_entry
from extract.cache.hashindex import HashIndex
from extract.cache.layout import Entry
from extract.cache.store import LEFT_OUT_STAT, read_stats
from extract.cache.templates import is_current


class EntryState(StrEnum):
    PRESENT = "present"
    UNVERIFIED = "unverified"
    MISSING = "missing"
    STALE = "stale"
    CORRUPT = "corrupt"

    @property
    def usable(self) -> bool:
        return self in (EntryState.PRESENT, EntryState.UNVERIFIED)


@dataclass(frozen=True)
class EntryStatus:
    entry: Entry
    state: EntryState
    reason: str = ""
    source_kind: str = ""
    # measurements its query left out as NaN, infinite or out of range; None: not recorded
    left_out: int | None = None


def entry_status(entry: Entry, artifacts: Path, index: HashIndex | None = None) -> EntryStatus:
    """Where ``entry`` stands; never raises for anything found on disk."""
    if not (entry.data_path(artifacts).exists() or entry.stats_path(artifacts).exists()):
        return EntryStatus(entry, EntryState.MISSING)
    checked = check_entry(entry, artifacts, index)
    if checked.integrity == Integrity.CORRUPT:
        return EntryStatus(entry, EntryState.CORRUPT, checked.reason, checked.source_kind)
    stats = read_stats(entry, artifacts) or {}
    if not is_current(entry.dataset, stats):
        return EntryStatus(
            entry, EntryState.STALE, "made by another version of the template", checked.source_kind
        )
    state = EntryState.PRESENT if checked.integrity == Integrity.PRESENT else EntryState.UNVERIFIED
    left_out = stats.get(LEFT_OUT_STAT)
    return EntryStatus(
        entry,
        state,
        checked.reason,
        checked.source_kind,
        left_out if isinstance(left_out, int) and not isinstance(left_out, bool) else None,
    )


def entry_state(entry: Entry, artifacts: Path) -> EntryState:
    return entry_status(entry, artifacts).state
