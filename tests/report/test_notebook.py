"""The example notebook, executed for real (nbclient + ipykernel) on the demo database."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

pytestmark = pytest.mark.slow
NOTEBOOK = REPO / "notebooks" / "iqb_template.ipynb"


def svg(cell: nbformat.NotebookNode) -> str:
    """The SVG image a cell displayed ("" when none)."""
    return "".join(
        out["data"]["image/svg+xml"]
        for out in cell.get("outputs", [])
        if "image/svg+xml" in out.get("data", {})
    )


def outputs(cell: nbformat.NotebookNode) -> str:
    text = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            text.append(out["text"])
        elif "data" in out:
            text.append(out["data"].get("text/plain", ""))
    return "\n".join(text)


def test_notebook_runs_on_the_demo_database(demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IQB_ARTIFACTS", str(demo_db))  # the kernel inherits it
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook without outputs"
    )
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(o.get("output_type") != "error" for c in code for o in c.get("outputs", []))
    by_source = {c.source.splitlines()[0]: outputs(c) for c in code}
    images = {c.source.splitlines()[0]: svg(c) for c in code}
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        za = con.execute(
            "select download_sample_count from quality_by_country "
            "where country_code = 'ZA' order by period_start"
        ).fetchall()
        [(n, scored, thin)] = con.execute(
            "select count(*), count(iqb_score), count(*) filter (where not meets_min_samples) "
            "from iqb_scores_by_country where period_start = '2024-10-01'"
        ).fetchall()
        [(top_asn,)] = con.execute(
            "select asn from quality_by_country_asn where country_code = 'ZA' and "
            "period_start = '2024-10-01' order by download_sample_count desc limit 1"
        ).fetchall()
    assert str(demo_db) in by_source["from extract.results import api"]
    trend = by_source["trend = api.trend(COUNTRY)"]
    assert "2024-09-01" in trend and "2024-10-01" in trend
    assert all(re.search(rf"\b{count}\b", trend) for (count,) in za)
    networks = by_source['networks = api.quality("country_asn", country=COUNTRY, period="latest")']
    assert str(top_asn) in networks and "SYNTHETIC-AS" in networks
    world = by_source['world = api.scores("country", period="latest")']
    assert f"{n} countries, {scored} scored, {thin} thin" in world
    # the demo's rows are synthetic, and every cell that shows them says so
    assert "rows of iqb_scores_by_country come from synthetic data" in world
    assert "is_synthetic" in by_source["from extract.results import api"]
    assert (
        "score_percentile"
        in by_source['row = api.scores("country", country=COUNTRY, period="latest")']
    )

    # a trend chart: one line per series, a label per period
    trend_chart = images["line_chart("]
    assert trend_chart.count("<polyline") == 2
    assert "2024-09-01" in trend_chart and "2024-10-01" in trend_chart
    # the map's data as a chart: the best 15 scored countries, best first
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        best = con.execute(
            "select country_code, iqb_score from iqb_scores_by_country "
            "where period_start = '2024-10-01' and iqb_score is not null and is_known_country "
            "order by iqb_score desc, country_code limit 15"
        ).fetchall()
        [(p50_mean, p95_mean)] = con.execute(
            "select avg(iqb_score) filter (where score_percentile = 50), "
            "avg(iqb_score) filter (where score_percentile = 95) "
            "from iqb_scores_all_percentiles_by_country "
            "where period_start = '2024-10-01' and is_known_country"
        ).fetchall()
    bars = images['ranked = map_data.dropna(subset=["iqb_score"]).sort_values(']
    assert bars.count("<rect") == len(best) == 15
    assert re.findall(r">([A-Z]{2})</text>", bars) == [cc for cc, _ in best]
    # the same data at p50 and with another config, without a rebuild
    compared = by_source['p95 = api.scores("country", period="latest")']
    assert f"mean IQB score at p95 {p95_mean:.3f}, at p50 {p50_mean:.3f}" in compared
    assert p50_mean != p95_mean
    what_if = by_source["config = api.config()"]
    found = re.search(r"(\d+) countries score otherwise", what_if)
    assert found, what_if
    changed = int(found[1])
    assert changed > 0
