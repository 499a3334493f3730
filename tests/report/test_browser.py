"""The report in a real browser: headless Chromium, network blocked, values from the database.

These tests fail, never skip, when Chromium is missing (.ci/run installs it).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from extract.results.html.build import write_html_report
from tests.report.helpers import Rendered, element, js_fmt, render

pytestmark = pytest.mark.slow
OCT = "2024-10-01"


@pytest.fixture(scope="module")
def demo_page(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Rendered, Path]:
    work = tmp_path_factory.mktemp("browser")
    rep = write_html_report(demo_db, work / "report")
    shot = work / "demo.png"
    page = render(f"{rep.index.as_uri()}#country=ZA&level=subdivision1", work, screenshot=shot)
    return page, shot


def one(root: Path, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    with duckdb.connect(str(root / "iqb.duckdb"), read_only=True) as con:
        row = con.execute(sql, params or []).fetchone()
    assert row is not None, sql  # an aggregate or a known row: never empty
    return row


def js_number(v: float) -> str:
    """How JavaScript prints a number (the shortest form that reads back the same)."""
    return repr(v).removesuffix(".0")


def text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_loads_nothing_from_the_network(demo_page: tuple[Rendered, Path]) -> None:
    page, _ = demo_page
    assert page.page_requests == []
    assert "IQB.summary" not in text(element(page.dom, "country-title"))  # scripts ran


def test_world_map_shows_the_scores_of_the_database(
    demo_db: Path, demo_page: tuple[Rendered, Path]
) -> None:
    page, _ = demo_page
    m = element(page.dom, "map")
    countries, scored, thin = one(
        demo_db,
        (
            "select count(*), count(*) filter (where meets_min_samples and iqb_score is not null), "
            "count(*) filter (where not meets_min_samples) from iqb_scores_by_country "
            "where period_start = ?"
        ),
        [OCT],
    )
    assert f'data-countries="{countries}"' in m and f'data-scored="{scored}"' in m
    assert f'data-thin="{thin}"' in m and thin > 0
    assert "<svg" in m and m.count("<path") > 150  # the countries, drawn
    # ECharts' own accessible description lists the first data items with their values
    described = re.search(r'aria-label="(This is a chart[^"]*)"', m)
    assert described is not None, m[:300]
    label = html.unescape(described[1])
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        first = con.execute(
            "select country_code, iqb_score from iqb_scores_by_country where period_start = ? "
            "and meets_min_samples and iqb_score is not null order by country_code limit 3",
            [OCT],
        ).fetchall()
    for cc, score in first:  # computed in the page, the database's score to the last bit
        assert f"the data for {cc} is {js_number(score)}" in label, label[:300]


def test_trend_charts_show_every_period_for_the_country(
    demo_db: Path, demo_page: tuple[Rendered, Path]
) -> None:
    page, _ = demo_page
    d50, l95 = one(
        demo_db,
        "select download_p50, latency_p95 from quality_by_country "
        "where country_code = 'ZA' and period_start = ?",
        [OCT],
    )
    download = text(element(page.dom, "trend-download"))
    assert "2024-09" in download and "2024-10" in download  # one point per period
    assert js_fmt(d50, "download") in download  # the latest median, as a label
    assert "higher is better" in download
    latency = text(element(page.dom, "trend-latency"))
    assert js_fmt(l95, "latency") in latency and "lower is better" in latency
    assert "best-served 5%, the low end" in latency  # the inverted label, named
    assert "<svg" in element(page.dom, "trend-score")


def test_country_drill_down_lists_its_subdivisions(
    demo_db: Path, demo_page: tuple[Rendered, Path]
) -> None:
    page, _ = demo_page
    assert "South Africa (ZA), 2024-10" in text(element(page.dom, "country-title"))
    body = element(page.dom, "drill")
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        subs = con.execute(
            "select subdivision1_name, download_sample_count, meets_min_samples "
            "from quality_by_subdivision1 where country_code = 'ZA' and period_start = ? "
            "order by download_sample_count + upload_sample_count desc",
            [OCT],
        ).fetchall()
    trs = re.findall(r"<tr [^>]*>.*?</tr>", body.split("<tbody>")[1], re.S)
    assert len(trs) == len(subs)
    name, count, _ = subs[0]
    assert name in text(trs[0]) and js_fmt(count, "count") in text(trs[0])
    thin = sum(not meets for *_, meets in subs)
    assert sum('class="thin"' in tr for tr in trs) == thin
    assert 'aria-sort="descending"' in body  # sorted by download tests, as the page says
    breakdown = text(element(page.dom, "breakdown"))
    assert "Video conferencing" in breakdown and "threshold" in breakdown


def test_synthetic_data_say_so(demo_page: tuple[Rendered, Path]) -> None:
    page, _ = demo_page
    banner = element(page.dom, "synthetic-banner")
    assert " hidden" not in banner.split(">")[0]
    assert "Synthetic data: 2 of 2 period(s)" in text(banner)
    assert "(synthetic)" in text(element(page.dom, "period"))


def test_real_october_report_says_real(real_db: Path, tmp_path: Path) -> None:
    rep = write_html_report(real_db, tmp_path / "report")
    page = render(f"{rep.index.as_uri()}#country=BR", tmp_path)
    assert page.page_requests == []
    assert " hidden" in element(page.dom, "synthetic-banner").split(">")[0]
    title = text(element(page.dom, "country-title"))
    assert "Brazil (BR), 2024-10" in title and "real" in title
    score, tests = one(
        real_db,
        "select iqb_score, download_sample_count "
        "from iqb_scores_by_country where country_code = 'BR'",
    )
    kpis = text(element(page.dom, "country-kpis"))
    assert f"IQB score at p95 {js_fmt(score, 'score')}" in kpis
    assert f"Download tests {js_fmt(tests, 'count')}" in kpis and tests > 1_000_000
    assert "No subdivisions for this country" in text(element(page.dom, "drill-caption"))


def test_the_network_check_can_fail(tmp_path: Path) -> None:
    """A page that does reach for the network is caught (the check is not vacuous)."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text(
        '<html><body><img src="http://127.0.0.1:9/x.png">'
        '<script src="https://cdn.invalid/x.js"></script>ok</body></html>'
    )
    page = render(page_file.as_uri(), tmp_path)
    assert "http://127.0.0.1:9/x.png" in page.page_requests
    assert "https://cdn.invalid/x.js" in page.page_requests


def test_screenshot_is_a_picture(demo_page: tuple[Rendered, Path]) -> None:
    _, shot = demo_page
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


def test_another_period_and_level_load_their_drill_down(demo_db: Path, tmp_path: Path) -> None:
    rep = write_html_report(demo_db, tmp_path / "report")
    page = render(f"{rep.index.as_uri()}#period=2024-09-01&country=ZA&level=city", tmp_path)
    assert page.page_requests == []
    assert "South Africa (ZA), 2024-09" in text(element(page.dom, "country-title"))
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        row = con.execute(
            "select city, download_sample_count, count(*) over () from quality_by_city "
            "where country_code = 'ZA' and period_start = '2024-09-01' "
            "order by download_sample_count + upload_sample_count desc limit 1"
        ).fetchone()
    assert row is not None, "no city of ZA in 2024-09"
    city, n, total = row
    body = element(page.dom, "drill")
    first = re.findall(r"<tr [^>]*>.*?</tr>", body.split("<tbody>")[1], re.S)[0]
    assert city in text(first) and js_fmt(n, "count") in text(first)
    caption = text(element(page.dom, "drill-caption"))
    assert (
        f"of {total} (all are in quality_by_city" in caption
        if total > 50
        else f"All {total} cities" in caption
    )
