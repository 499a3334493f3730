"""`iqb extract run --engine bigquery --dry-run`: every pending entry priced, nothing run.

bqemulator has no cost model (its dry runs report 0 bytes), so the relay stamps
a known byte count on dry-run answers; everything else is the real client and
the real emulator.
"""

from __future__ import annotations

import re
from pathlib import Path

from extract.cache.layout import Entry
from extract.datasets import DATASETS
from tests.bigquery.bq_harness import (
    MONTH,
    NEXT_MONTH,
    FaultProxy,
    extract_on_bigquery,
    write_config,
)

GIB = 2**30
ENTRIES = [Entry(d, MONTH, NEXT_MONTH) for d in DATASETS]


def dry_run(
    proxy: FaultProxy, root: Path, *extra: str, granularities: str | None = None
) -> tuple[int, str]:
    config = write_config(root / "pipeline.yaml", *([granularities] if granularities else []))
    return extract_on_bigquery(
        config,
        root / "artifacts",
        "--dry-run",
        *extra,
        emulator=proxy.url,
    )


def test_dry_run_prices_each_entry_and_the_total(bq_proxy: FaultProxy, tmp_path: Path) -> None:
    bq_proxy.dry_run_bytes = 3 * GIB
    code, output = dry_run(bq_proxy, tmp_path, "--price-per-tib", "5")
    assert code == 0, output
    for entry in ENTRIES:
        assert re.search(rf"{re.escape(entry.label)}\s*│\s*3\.00 GiB", output), entry.label
    total = 12 * 3 * GIB
    assert f"total: 36.00 GiB ({total:,} bytes) in 12 queries" in output
    assert f"${total / 2**40 * 5:,.2f} at $5/TiB" in output  # $0.18
    assert "would run" not in output  # the priced table replaces the bare list


def test_dry_run_executes_no_job_and_writes_nothing(bq_proxy: FaultProxy, tmp_path: Path) -> None:
    bq_proxy.dry_run_bytes = GIB
    code, output = dry_run(bq_proxy, tmp_path, granularities="[country]")
    assert code == 0, output
    inserted = bq_proxy.jobs_inserted()
    assert len(inserted) == 2
    assert all(body["configuration"]["dryRun"] is True for body in inserted)
    # Only table metadata (the up-front check) and dry-run submissions: no result read.
    kinds = {(s.method, re.sub(r"/projects/[^/]+/(\w+).*", r"/\1", s.path)) for s in bq_proxy.seen}
    assert kinds == {("GET", "/bigquery/v2/datasets"), ("POST", "/bigquery/v2/jobs")}, kinds
    assert not (tmp_path / "artifacts" / "cache").exists()


def test_dry_run_flags_entries_over_the_byte_cap(bq_proxy: FaultProxy, tmp_path: Path) -> None:
    bq_proxy.dry_run_bytes = 3 * GIB
    code, output = dry_run(
        bq_proxy, tmp_path, "--maximum-bytes-billed", "2GiB", granularities="[country]"
    )
    assert code == 0, output
    assert len(re.findall(r"3\.00 GiB\s*│\s*yes", output)) == 2
    assert "2 entries would scan more than --maximum-bytes-billed (2.00 GiB)" in output
    caps = {b["configuration"]["query"]["maximumBytesBilled"] for b in bq_proxy.jobs_inserted()}
    assert caps == {str(2 * GIB)}
