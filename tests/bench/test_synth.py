"""The synthetic cache: real shape, exact schemas, percentile order and polarity, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench import synth
from extract.cache.state import EntryState, entry_state
from extract.datasets import DATASETS, DATASETS_BY_NAME, PERCENTILES, Dataset

SCALE = 0.01


@pytest.fixture(scope="module")
def periods() -> dict[synth.Period, list]:
    return synth.manifest_entries()


def test_manifest_shape(periods: dict) -> None:
    """205 months, 4,900 files: every month has all 12 datasets but the newest (country only)."""
    assert len(periods) == 205
    assert sum(2 * len(e) for e in periods.values()) == 4900
    assert len(synth.full_months(periods)) == 204
    newest = list(periods.values())[-1]
    assert {e.dataset.level for e in newest} == {"country"}
    window = synth.latest(periods, 13)
    assert [p.start.isoformat() for p in window][:1] == ["2025-01-01"]


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_values_follow_the_contract(dataset: Dataset, periods: dict) -> None:
    period = synth.full_months(periods)[-1]
    table = synth.month_table(dataset, period, seed=0, scale=SCALE)
    assert table.schema == dataset.schema
    assert table.num_rows > 0
    assert table.sort_by([(k, "ascending") for k in dataset.keys]).equals(table)
    for key in dataset.keys:
        assert table.column(key).null_count == 0
    assert min(table.column("sample_count").to_pylist()) >= 1
    for metric in dataset.metrics:
        values = np.column_stack([table.column(f"{metric}_p{p}").to_numpy() for p in PERCENTILES])
        assert np.isfinite(values).all() and (values >= 0).all()
        steps = np.diff(values, axis=1)
        if metric in ("latency", "loss"):  # lower is better: labels inverted
            assert (steps <= 0).all(), metric
        else:
            assert (steps >= 0).all(), metric
        if metric == "loss":
            assert (values <= 1).all()
            assert (values == 0).any()  # real loss has exact zeros at the good end
        if metric == "latency":
            assert np.allclose(values, np.round(values, 3))  # milliseconds, 3 decimals


def test_deterministic_from_the_seed(periods: dict) -> None:
    period = synth.full_months(periods)[-1]
    dataset = DATASETS_BY_NAME["downloads_by_country_city_asn"]
    first = synth.month_table(dataset, period, seed=3, scale=SCALE)
    assert first.equals(synth.month_table(dataset, period, seed=3, scale=SCALE))
    assert not first.equals(synth.month_table(dataset, period, seed=4, scale=SCALE))


def test_real_sizes_at_scale_one(periods: dict) -> None:
    """Row counts in line with the real bucket (the real manifest's sizes)."""
    period = synth.full_months(periods)[-1]
    rows = {
        d.level: synth.month_table(d, period, 0, 1.0).num_rows
        for d in DATASETS
        if d.direction == "downloads"
    }
    assert 220 <= rows["country"] <= 240
    assert 2_000 <= rows["country_subdivision1"] <= 9_000
    assert 10_000 <= rows["country_asn"] <= 99_999
    assert 10_000 <= rows["country_city"] <= 99_999
    assert 200_000 <= rows["country_city_asn"] <= 260_000


def test_written_like_the_extractor(tmp_path: Path) -> None:
    """write_entry's files: present for the extractor, stats with the upstream fields, resumable."""
    written = synth.synth(tmp_path, months=2, seed=0, scale=SCALE)
    assert written.entries == 14  # 12 datasets + the country-only newest month
    entries = [e for es in synth.latest(synth.manifest_entries(), 2).values() for e in es]
    for entry in entries:
        assert entry_state(entry, tmp_path) == EntryState.PRESENT
        stats = json.loads(entry.stats_path(tmp_path).read_text())
        assert {
            "query_start_time",
            "query_duration_seconds",
            "template_hash",
            "total_bytes_processed",
            "total_bytes_billed",
            "rows",
            "engine",
            "schema_version",
        } <= set(stats)
        assert stats["engine"] == synth.ENGINE
        meta = pq.ParquetFile(entry.data_path(tmp_path)).metadata
        assert meta.num_rows == stats["rows"]
        assert meta.row_group(0).column(0).compression == "ZSTD"
    mtimes = {e.key: e.data_path(tmp_path).stat().st_mtime_ns for e in entries}
    again = synth.synth(tmp_path, months=2, seed=0, scale=SCALE)
    assert again == written
    assert mtimes == {e.key: e.data_path(tmp_path).stat().st_mtime_ns for e in entries}


def test_full_layout_and_links(tmp_path: Path) -> None:
    window = tmp_path / "window"
    synth.synth(window, months=1, seed=0, scale=SCALE)
    keys = [e.key for es in synth.latest(synth.manifest_entries(), 1).values() for e in es]
    full = tmp_path / "full"
    synth.link_tree(window, full, keys)
    written = synth.synth(full, months=1, seed=0, scale=SCALE, older_scale=0.002, layout_months=3)
    assert written.entries == 2 + 12 + 12
    for key in keys:  # the window is shared, not copied
        assert (full / key / "data.parquet").stat().st_ino == (
            window / key / "data.parquet"
        ).stat().st_ino
