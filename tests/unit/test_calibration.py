"""The embedded sample reproduces the real October 2024 M-Lab country table.

This is the promise that makes the embedded default worth exploring: run the
same templates over the default sample and the real figures come back.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from extract.cache.layout import Entry
from extract.datasets import DATASETS_BY_NAME
from extract.extraction.engines.duckdb import DuckDBEngine
from extract.extraction.runner import Outcome, RunOptions, run_matrix
from extract.extraction.sample.generate import DEFAULT_ROWS, write_sample
from tests.conftest import REAL_CACHE

OCT = date(2024, 10, 1)
NOV = date(2024, 11, 1)
REAL_DIR = REAL_CACHE / "v1" / "20241001T000000Z" / "20241101T000000Z"
TOLERANCE = 0.05
MIN_ROWS = 20_000


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calibration")
    write_sample(root, [OCT], rows=DEFAULT_ROWS, seed=0)
    entries = [
        Entry(DATASETS_BY_NAME[n], OCT, NOV) for n in ("downloads_by_country", "uploads_by_country")
    ]
    summary = run_matrix(entries, DuckDBEngine(root), root, RunOptions())
    assert [r.outcome for r in summary.reports] == [Outcome.DONE, Outcome.DONE], summary.reports
    return root


def rows_by_country(path: Path) -> dict[str, dict]:
    return {r["country_code"]: r for r in pq.read_table(path).to_pylist()}


@pytest.mark.parametrize(
    ("dataset", "columns"),
    [
        ("downloads_by_country", ("download_p50", "download_p95", "latency_p95")),
        ("uploads_by_country", ("upload_p95",)),
    ],
)
def test_country_percentiles_match_real_october_2024(
    extracted: Path, dataset: str, columns: tuple[str, ...]
) -> None:
    real = rows_by_country(REAL_DIR / dataset / "data.parquet")
    ours = rows_by_country(Entry(DATASETS_BY_NAME[dataset], OCT, NOV).data_path(extracted))
    big = [cc for cc, row in ours.items() if row["sample_count"] >= MIN_ROWS]
    assert 12 <= len(big) <= 20, big  # about fifteen countries in a two-million-row sample
    off = {
        (cc, col): ours[cc][col] / real[cc][col] - 1
        for cc in big
        for col in columns
        if real[cc][col]
    }
    worst = max(off.items(), key=lambda kv: abs(kv[1]))
    assert abs(worst[1]) <= TOLERANCE, f"worst: {worst}"


@pytest.mark.parametrize("dataset", ["downloads_by_country", "uploads_by_country"])
def test_every_real_country_is_present_with_its_share(extracted: Path, dataset: str) -> None:
    real = rows_by_country(REAL_DIR / dataset / "data.parquet")
    ours = rows_by_country(Entry(DATASETS_BY_NAME[dataset], OCT, NOV).data_path(extracted))
    assert set(ours) == set(real)
    real_total = sum(r["sample_count"] for r in real.values())
    our_total = sum(r["sample_count"] for r in ours.values())
    for cc in ("US", "IN", "DE", "BR"):
        real_share = real[cc]["sample_count"] / real_total
        assert ours[cc]["sample_count"] / our_total == pytest.approx(real_share, rel=0.05)
    assert min(r["sample_count"] for r in ours.values()) >= 100  # the floor for small countries


def test_sample_is_deterministic_and_labelled(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", [OCT], rows=20_000, seed=7)
    b = write_sample(tmp_path / "b", [OCT], rows=20_000, seed=7)
    c = write_sample(tmp_path / "c", [OCT], rows=20_000, seed=8)
    for (pa_, _), (pb, _), (pc, _) in zip(a, b, c, strict=True):
        ta, tb, tc = pq.read_table(pa_), pq.read_table(pb), pq.read_table(pc)
        assert ta.equals(tb)
        assert not ta.equals(tc)
        assert ta.schema.metadata[b"iqb_synthetic"] == b"true"
        geo = ta.column("client").combine_chunks().field("Geo")
        names = {n for n in geo.field("Subdivision1Name").to_pylist() if n}
        assert all(n.startswith("Synthetic") for n in names)
        dates = ta.column("date").to_pylist()
        assert min(dates) >= OCT and max(dates) < NOV
