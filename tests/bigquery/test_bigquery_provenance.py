"""BigQuery and the cache's provenance: synthetic entries are re-run for real, and
entries the remote already holds (M-Lab's own, with upstream's template hash) are
priced at 0 bytes and pulled, never queried.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from extract.cache.layout import Entry
from extract.cache.state import EntryState, entry_status
from extract.datasets import DATASETS_BY_NAME
from extract.extraction.engines.duckdb import DuckDBEngine
from extract.extraction.runner import RunOptions, run_matrix
from tests.bigquery.bq_harness import (
    MONTH,
    NEXT_MONTH,
    Emulator,
    FaultProxy,
    extract_on_bigquery,
    iqb,
    write_config,
)
from tests.conftest import REAL_CACHE

GIB = 2**30
COUNTRY = [
    Entry(DATASETS_BY_NAME[n], MONTH, NEXT_MONTH)
    for n in ("downloads_by_country", "uploads_by_country")
]


@pytest.fixture
def mlab_remote(tmp_path: Path) -> Iterator[str]:
    """M-Lab's real October 2024 country entries behind a loopback HTTP server, with a
    manifest in upstream's format (no size), as M-Lab's bucket serves them."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(REAL_CACHE.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    files = {}
    for entry in COUNTRY:
        for name in ("data.parquet", "stats.json"):
            key = f"{entry.key}/{name}"
            files[key] = {
                "sha256": hashlib.sha256((REAL_CACHE.parent / key).read_bytes()).hexdigest(),
                "url": f"{base}/{key}",
            }
    manifest = tmp_path / "mlab-manifest.json"
    manifest.write_text(json.dumps({"v": 0, "files": files}))
    try:
        yield str(manifest)
    finally:
        server.shutdown()
        server.server_close()


def test_dry_run_prices_nothing_for_what_the_remote_holds(
    bq_proxy: FaultProxy, tmp_path: Path, mlab_remote: str
) -> None:
    bq_proxy.dry_run_bytes = 3 * GIB
    config = write_config(tmp_path / "pipeline.yaml", "[country, country_asn]")
    code, output = extract_on_bigquery(
        config,
        tmp_path / "a",
        "--dry-run",
        "--remote",
        mlab_remote,
        "--allow-http",
        emulator=bq_proxy.url,
    )
    assert code == 0, output
    for entry in COUNTRY:
        assert re.search(
            rf"{re.escape(entry.label)} \(in the remote: pulled, no query\)\s*│"
            r"\s*0 B",
            output,
        ), output
    assert "total: 6.00 GiB" in output and "in 2 queries" in output  # only the two ASN ones
    assert len(bq_proxy.jobs_inserted()) == 2
    assert not (tmp_path / "a" / "cache").exists()


def test_synthetic_entries_are_rerun_for_real(
    bq_emulator: Emulator, bq_proxy: FaultProxy, tmp_path: Path
) -> None:
    root = tmp_path / "artifacts"
    summary = run_matrix(COUNTRY, DuckDBEngine(bq_emulator.raw_root), root, RunOptions())
    assert [r.outcome.value for r in summary.reports] == ["done", "done"]
    for entry in COUNTRY:  # made from `iqb sample` data: present, and synthetic
        status = entry_status(entry, root)
        assert (status.state, status.source_kind) == (EntryState.PRESENT, "synthetic")
    config = write_config(tmp_path / "pipeline.yaml", "[country]")
    # the embedded engine is content with them ...
    code, output = iqb("extract", "run", "-c", str(config), "--artifacts", str(root))
    assert code == 0 and re.search(r"skipped\s*│\s*2", output), output
    # ... BigQuery is not: it runs them, without --force
    code, output = extract_on_bigquery(
        config,
        root,
        emulator=bq_proxy.url,
    )
    assert code == 0, output
    assert re.search(r"done\s*│\s*2", output), output
    for entry in COUNTRY:
        stats = json.loads(entry.stats_path(root).read_text())
        assert stats["source"]["kind"] == "bigquery" and stats["source"]["tables"]
        assert entry_status(entry, root).state == EntryState.PRESENT
    code, output = extract_on_bigquery(
        config,
        root,
        emulator=bq_proxy.url,
    )
    assert code == 0 and re.search(r"skipped\s*│\s*2", output), output
