"""A synthetic cache with the real bucket's shape, so that benchmarks run at real scale.

The periods and datasets come from M-Lab's real bucket manifest (4,900 files:
205 months x 12 datasets, the newest month country-only), or from a window of
its latest months. Every file has its dataset's exact schema
(``Dataset.schema``) and is written by the cache writer itself
(``write_entry``: zstd, 64k-row batches, atomic, stats.json with the upstream
fields plus rows/engine/schema_version), so it is byte-for-byte the kind of
file that ``iqb extract run`` leaves.

Sizes follow the real bucket: ~240 countries, a few thousand subdivisions,
tens of thousands of country-ASN and city rows, ~232,000 city-ASN rows per
month and direction. The places are one synthetic hierarchy (country ->
subdivision -> city -> the ASNs seen in that city) that persists from month to
month; each month draws every city-ASN pair's sample count from a Poisson law
and sums them up the hierarchy, so coarser levels are true roll-ups and a pair
with no tests that month has no row (as in the real tables).

Values are what ``APPROX_QUANTILES`` returns: order statistics of
``sample_count`` draws through the country's real October 2024 quantile
function (``extract/extraction/sample``'s calibration), scaled by a per-place factor.
Small groups therefore repeat values across percentiles, latency keeps the
real millisecond resolution (3 decimals) and loss has its real share of exact
zeros, which is what decides how well the files compress. Percentile order
and polarity hold by construction: download/upload non-decreasing p1..p99,
latency/loss non-increasing, loss in [0, 1]. Same seed, same files.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.places import Period, month_table
from extract.cache.layout import Entry, parse_cache_key
from extract.cache.state import EntryState, entry_state
from extract.cache.store import read_stats, write_entry
from extract.datasets import DATASETS
from extract.extraction.engines.duckdb import BATCH_ROWS
from extract.months import next_month

REPO = Path(__file__).resolve().parents[1]
REAL_MANIFEST = REPO / "tests" / "fixtures" / "manifests" / "mlab-bucket-manifest.json"
ENGINE = "bench-synth"
# Bump when the generator changes: entries written by another version are rewritten.
SYNTH_VERSION = 1


def manifest_entries(manifest: Path = REAL_MANIFEST) -> dict[Period, list[Entry]]:
    """Every period of an upstream manifest with the entries it holds, oldest first."""
    files = json.loads(manifest.read_text())["files"]
    periods: dict[Period, dict[str, Entry]] = defaultdict(dict)
    for key in files:
        parsed = parse_cache_key(key)
        if parsed is None:
            raise ValueError(f"{manifest}: {key!r} is outside the cache layout")
        entry, _ = parsed
        periods[Period(entry.start, entry.end)][entry.dataset.name] = entry
    order = {d.name: i for i, d in enumerate(DATASETS)}
    return {
        p: sorted(periods[p].values(), key=lambda e: order[e.dataset.name])
        for p in sorted(periods, key=lambda p: p.start)
    }


def latest(periods: dict[Period, list[Entry]], months: int) -> dict[Period, list[Entry]]:
    """The newest ``months`` periods of a manifest."""
    keep = list(periods)[-months:] if months > 0 else []
    return {p: periods[p] for p in keep}


def full_months(periods: dict[Period, list[Entry]]) -> list[Period]:
    """Periods that hold all twelve datasets (the newest real month holds only two)."""
    return [p for p, entries in periods.items() if len(entries) == len(DATASETS)]


@dataclass(frozen=True)
class Written:
    entries: int
    rows: int
    bytes: int

    def __add__(self, other: Written) -> Written:
        return Written(
            self.entries + other.entries, self.rows + other.rows, self.bytes + other.bytes
        )


def _present(entry: Entry, root: Path, seed: int, scale: float) -> Written | None:
    """The entry's size if it is already there, written by this synth with these parameters."""
    stats = read_stats(entry, root)
    if (
        stats is None
        or stats.get("engine") != ENGINE
        or stats.get("synthetic_seed") != seed
        or stats.get("synthetic_scale") != scale
        or stats.get("synthetic_version") != SYNTH_VERSION
        or entry_state(entry, root) != EntryState.PRESENT
    ):
        return None
    return Written(1, int(stats["rows"]), entry.data_path(root).stat().st_size)


def write_entries(
    root: Path, periods: dict[Period, list[Entry]], seed: int, scale: float
) -> Written:
    """Write each entry with the cache writer, as ``iqb extract run`` would.

    An entry already written with the same seed and scale is kept, so an
    interrupted run resumes and a second run costs only a scan.
    """
    total = Written(0, 0, 0)
    for period, period_entries in periods.items():
        for entry in period_entries:
            done = _present(entry, root, seed, scale)
            if done is None:
                table = month_table(entry.dataset, period, seed, scale)
                batches = iter(table.to_batches(max_chunksize=BATCH_ROWS))
                result = write_entry(
                    entry,
                    root,
                    batches,
                    {
                        "total_bytes_processed": 0,
                        "total_bytes_billed": 0,
                        "synthetic_seed": seed,
                        "synthetic_scale": scale,
                        "synthetic_version": SYNTH_VERSION,
                    },
                    ENGINE,
                )
                done = Written(1, result.rows, result.bytes)
            total += done
    return total


def synth(
    root: Path,
    months: int,
    seed: int = 0,
    scale: float = 1.0,
    older_scale: float | None = None,
    layout_months: int | None = None,
    manifest: Path = REAL_MANIFEST,
) -> Written:
    """Write the latest ``months`` of the manifest at ``scale`` under ``root``.

    With ``older_scale``, also write the older months of the manifest (all of
    them, or up to ``layout_months`` in all) at that smaller scale: the
    manifest's full layout (4,900 files for the real one) at a size that fits
    in the memory of a local GCS emulator.
    """
    periods = manifest_entries(manifest)
    window = latest(periods, months)
    written = write_entries(root, window, seed, scale)
    if older_scale is not None:
        layout = latest(periods, layout_months) if layout_months else periods
        older = {p: e for p, e in layout.items() if p not in window}
        written += write_entries(root, older, seed, older_scale)
    return written


def next_period(periods: dict[Period, list[Entry]]) -> tuple[Period, list[Entry]]:
    """The month after the last one, with all twelve datasets: a new month arriving."""
    start = list(periods)[-1].end
    end = next_month(start)
    return Period(start, end), [Entry(d, start, end) for d in DATASETS]


def link_tree(source: Path, target: Path, keys: Iterable[str]) -> None:
    """Hard-link cache entries (relative keys) from one root into another: no bytes copied."""
    for key in keys:
        for src in sorted((source / key).iterdir()):
            dst = target / key / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists() and os.path.samefile(src, dst):
                continue
            dst.unlink(missing_ok=True)  # a file of an earlier synthesis
            os.link(src, dst)
