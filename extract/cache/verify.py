"""``iqb cache verify`` without a manifest: every data file re-read against its record.

Entries in upstream's format (no hash in stats.json) that read as Parquet with
the dataset's columns get their hash recorded (``extract.cache.verified``), so
they count as present from then on and any later change to them is caught.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from extract.cache import verified
from extract.cache.catalog import CatalogEntry, Integrity, scan


@dataclass
class CacheVerifyReport:
    entries: list[CatalogEntry] = field(default_factory=list)
    recorded: list[CatalogEntry] = field(default_factory=list)  # unverified -> verified now
    not_recorded: str = ""  # why recording failed (a read-only tree), if it did

    def count(self, integrity: Integrity) -> int:
        return sum(c.integrity == integrity for c in self.entries)

    @property
    def corrupt(self) -> list[CatalogEntry]:
        return [c for c in self.entries if c.integrity == Integrity.CORRUPT]


def verify_cache(
    artifacts: Path, wanted: Callable[[CatalogEntry], bool] = lambda _: True
) -> CacheVerifyReport:
    """Re-read every (wanted) entry; record the hash of the unverified ones."""
    report = CacheVerifyReport(entries=[c for c in scan(artifacts, full=True) if wanted(c)])
    for c in report.entries:
        if c.integrity != Integrity.UNVERIFIED or c.sha256 is None:
            continue
        data = c.entry.data_path(artifacts)
        try:
            verified.record(
                c.entry,
                artifacts,
                c.entry.stats_path(artifacts).read_bytes(),
                data.stat().st_size,
                c.sha256,
                "iqb cache verify",
            )
        except OSError as exc:
            report.not_recorded = f"{exc.filename or artifacts}: {exc.strerror or exc}"
            break
        report.recorded.append(c)
    return report
