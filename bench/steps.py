"""Workloads that the harness measures in a child process: ``python -m bench.steps NAME ROOT``.

- ``floor``: DuckDB reads every byte of the cache once (all columns of every
  ``data.parquet``, one scan per dataset, batches discarded). No build over
  the same files can be faster, so ``build / floor`` is the price of the
  transformation itself.
- ``baseline``: what upstream IQB does to use the cache: one
  ``pq.read_table(...).to_pandas()`` per entry, then an inner ``merge`` of
  downloads with uploads on the level's keys, for all six levels of every
  period.
- ``direct``: the marts' own SQL, as dbt compiled it (``--target``: dbt's
  target folder after a build), run once in one DuckDB process with DuckDB's
  default threads (the cores, as under dbt), one ``COPY`` per mart and period
  to the same Parquet files the build writes (same sort, compression, row
  groups, footer keys and provenance columns), with no dbt, no plan, no tests
  and no publish. It reads the staging views of the working database the build
  left (read-only): the build's COPY reads each period's own cache files
  instead, so at 13 months the two read the same bytes with DuckDB pruning the
  other periods' file names here. ``build / direct`` is what dbt and write-audit-publish add
  on top of the work itself.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable
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


# The materialization's placeholder for one period's filter (macros/periods.sql).
PLACEHOLDER = "/* iqb: one period */ true"


def compiled_marts(target: Path) -> list[tuple[str, str, list[str], list[str], dict]]:
    """(mart, compiled SQL, its datasets, cluster_by, parquet_options) for each
    ``audited_periods`` model."""
    manifest = json.loads((target / "manifest.json").read_text())
    marts = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["config"].get("materialized") != (
            "audited_periods"
        ):
            continue
        path = target / "compiled" / node["package_name"] / node["original_file_path"]
        datasets = [
            parent.split(".stg_")[-1]
            for parent in node["depends_on"]["nodes"]
            if parent.startswith("model.") and ".stg_" in parent
        ]
        config = node["config"]
        marts.append(
            (
                node["name"],
                path.read_text(),
                datasets,
                config.get("cluster_by") or [],
                config["parquet_options"],
            )
        )
    return sorted(marts)


def direct(root: Path, target: Path | None = None) -> int:
    """Every mart's every period written once, straight from the compiled SQL."""
    if target is None:
        raise SystemExit("direct: --target (dbt's target folder after a build) is required")
    paths = ArtifactPaths(root)
    periods: dict[str, set[tuple]] = defaultdict(set)
    for entry in cache_entries(root):
        periods[entry.dataset.name].add((entry.start, entry.end))
    out = root / "direct"
    shutil.rmtree(out, ignore_errors=True)
    con = duckdb.connect(
        str(paths.working_database),
        read_only=True,
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    rows = 0
    for mart, sql, datasets, cluster_by, options in compiled_marts(target):
        if PLACEHOLDER not in sql:
            raise SystemExit(f"direct: {mart}'s compiled SQL has no period placeholder")
        for start, end in sorted(set().union(*(periods[d] for d in datasets))):
            period_sql = sql.replace(
                PLACEHOLDER, f"(period_start = date '{start}' and period_end = date '{end}')"
            )
            order = f"order by {', '.join(cluster_by)}" if cluster_by else ""
            file = ArtifactPaths(out).mart_file(mart, str(start), str(end))  # as a build names it
            file.parent.mkdir(parents=True, exist_ok=True)
            quoted = str(file).replace("'", "''")
            con.execute(
                f"""copy (
                    select rows.*, 'synthetic'::varchar as source_kind,
                        true::boolean as is_synthetic, '{"0" * 64}'::varchar as source_fingerprint,
                        current_timestamp::timestamp as loaded_at
                    from ({period_sql}) as rows {order}
                ) to '{quoted}' (format parquet, compression {options["compression"]},
                    row_group_size {options["row_group_size"]},
                    kv_metadata {{'iqb.min_sample_count': '100'}})"""
            )
            rows += pq.ParquetFile(file).metadata.num_rows
    con.close()
    return rows


STEPS: dict[str, Callable[[Path], int]] = {"floor": floor, "baseline": baseline}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steps", description=__doc__)
    parser.add_argument("step", choices=sorted([*STEPS, "direct"]))
    parser.add_argument("root", type=Path, help="artifacts root holding cache/v1/...")
    parser.add_argument("--target", type=Path, help="dbt's target folder (direct only)")
    args = parser.parse_args(argv)
    rows = direct(args.root, args.target) if args.step == "direct" else STEPS[args.step](args.root)
    print(f"{args.step}: {rows} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
