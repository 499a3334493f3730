"""``cache verify`` (full re-hash against a manifest) and ``cache usage`` (size and cost)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from extract import defaults
from extract.cache.hashindex import HashIndex
from extract.cache.layout import STATS_FILE, parse_cache_key
from extract.sync.compare import Selection
from extract.sync.manifest import Manifest, publishable_files


@dataclass
class VerifyReport:
    ok: int = 0
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)  # key, local, manifest
    missing: int = 0  # in the manifest, not here (a partial pull is normal)
    unlisted: int = 0  # here, not in the manifest


def verify(
    artifacts: Path, manifest: Manifest, selection: Selection, jobs: int = defaults.LOCAL_JOBS
) -> VerifyReport:
    """Re-read every selected local file the manifest lists; the index is refreshed, not used."""
    local = {k: p for k, p in publishable_files(artifacts).items() if selection.matches(k)}
    listed = {k: r for k, r in manifest.files.items() if selection.matches(k)}
    both = sorted(k for k in local if k in listed)
    index = HashIndex(artifacts)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        hashes = list(pool.map(lambda k: index.rehash(k, local[k]), both))
    index.save()
    report = VerifyReport(
        missing=sum(k not in local for k in listed), unlisted=sum(k not in listed for k in local)
    )
    for key, sha in zip(both, hashes, strict=True):
        if sha == listed[key].sha256:
            report.ok += 1
        else:
            report.mismatched.append((key, sha, listed[key].sha256))
    return report


@dataclass
class PeriodUsage:
    start: date
    end: date
    entries: int = 0
    files: int = 0
    bytes: int = 0
    bytes_billed: int = 0
    bytes_processed: int = 0


def usage(artifacts: Path, selection: Selection) -> list[PeriodUsage]:
    """Local cache size and query cost per period; cost comes from each entry's stats.json."""
    periods: dict[tuple[date, date], PeriodUsage] = {}
    for key, path in publishable_files(artifacts).items():
        parsed = parse_cache_key(key)
        if parsed is None or not selection.matches(key):
            continue
        entry, name = parsed
        row = periods.setdefault((entry.start, entry.end), PeriodUsage(entry.start, entry.end))
        row.files += 1
        row.bytes += path.stat().st_size
        if name == STATS_FILE:
            row.entries += 1
            try:
                stats = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue  # an unreadable stats.json costs nothing we can know
            if not isinstance(stats, dict):
                continue  # nor does one that is not an object (`cache status` calls it corrupt)
            row.bytes_billed += int(stats.get("total_bytes_billed") or 0)
            row.bytes_processed += int(stats.get("total_bytes_processed") or 0)
    return [periods[k] for k in sorted(periods)]
