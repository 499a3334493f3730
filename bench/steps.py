"""Workloads that the harness measures in a child process: ``python -m bench.steps NAME ROOT``.

- ``floor``: DuckDB reads every byte of the cache once (all columns of every
  ``data.parquet``, one scan per dataset, batches discarded). No build over
  the same files can be faster, so ``build / floor`` is the price of the
  transformation itself.
- ``baseline``: what upstream IQB does to use the cache: one
  ``pq.read_table(...).to_pandas()`` per entry, then an inner ``merge`` of
  downloads with uploads on the level's keys, for all six levels of every
  period.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from extract.cache.layout import DATA_FILE, Entry, parse_cache_key
from extract.extraction.engines.duckdb import BATCH_ROWS
from extract.paths import ArtifactPaths


def cache_entries(root: Path) -> list[Entry]:
    """Every entry under ``root/cache/v1`` that has a data file, in layout order."""
    entries = []
    for path in sorted(ArtifactPaths(root).cache.glob(f"*/*/*/{DATA_FILE}")):
        parsed = parse_cache_key(path.relative_to(root).as_posix())
        if parsed is not None:
            entries.append(parsed[0])
    return entries


def floor(root: Path) -> int:
    """Scan all columns of all files, dataset by dataset; return the rows seen."""
    files: dict[str, list[str]] = defaultdict(list)
    for entry in cache_entries(root):
        files[entry.dataset.name].append(str(entry.data_path(root)))
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    rows = 0
    for paths in files.values():
        reader = con.execute("SELECT * FROM read_parquet(?)", [paths]).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            rows += batch.num_rows
    con.close()
    return rows


def baseline(root: Path) -> int:
    """Upstream's read path: pandas per entry, downloads merged with uploads per level."""
    by_period: dict[tuple, dict[str, Entry]] = defaultdict(dict)
    for entry in cache_entries(root):
        by_period[(entry.start, entry.end)][entry.dataset.name] = entry
    rows = 0
    for entries in by_period.values():
        for name, down in entries.items():
            if down.dataset.direction != "downloads":
                continue
            up = entries.get(name.replace("downloads_by_", "uploads_by_", 1))
            if up is None:
                continue
            downloads = pq.read_table(down.data_path(root)).to_pandas()
            uploads = pq.read_table(up.data_path(root)).to_pandas()
            merged = downloads.merge(
                uploads, on=list(down.dataset.keys), how="inner", suffixes=("_download", "_upload")
            )
            rows += len(merged)
    return rows


STEPS = {"floor": floor, "baseline": baseline}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steps", description=__doc__)
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("root", type=Path, help="artifacts root holding cache/v1/...")
    args = parser.parse_args(argv)
    rows = STEPS[args.step](args.root)
    print(f"{args.step}: {rows} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
