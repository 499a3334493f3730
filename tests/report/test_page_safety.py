"""The report is safe with any data, counts only countries, and marks what it scores.

Hostile values in every key column of every level (codes, names, cities, AS names and
numbers) reach the page as text; a 200,000-character AS name leaves the layout intact;
codes that are not countries stay in the data, flagged, and are never counted as
countries; a check mark comes from the exact value the score uses. Headless Chromium.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest

from extract.results.html.build import write_html_report
from extract.sync.snapshot import materialise_published
from tests.report.helpers import element, harness, harness_result, read_data_script, render, rows

pytestmark = pytest.mark.slow
OCT = "2024-10-01"
TITLE = "<title>IQB report: Internet Quality Barometer</title>"
LEVELS = ("country", "subdivision1", "city", "country_asn", "subdivision1_asn", "city_asn")


def hostile(tag: str) -> str:
    """Markup that, were it parsed, would run script and leave an element #pwn-<tag>."""
    return f'"><img src=x onerror="document.title=\'PWNED\'"><i id="pwn-{tag}"></i>\'<b>'


CC = hostile("cc")
LONG_NAME = "A" * 200_000


def found(pattern: str, within: str, flags: int = 0) -> re.Match[str]:
    match = re.search(pattern, within, flags)
    assert match is not None, f"{pattern!r} not in the page"
    return match


def text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def tables(con: duckdb.DuckDBPyConnection, kind: str) -> list[str]:
    return [f"{kind}_by_{level}" for level in LEVELS]


@pytest.fixture(scope="module")
def hostile_report(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo database, South Africa renamed to markup in every key column of every level."""
    work = tmp_path_factory.mktemp("hostile")
    root = work / "artifacts"
    root.mkdir()
    materialise_published(demo_db / "iqb.duckdb", root / "iqb.duckdb")
    with duckdb.connect(str(root / "iqb.duckdb")) as con:
        (sub,) = con.execute(
            "select subdivision1_iso_code from quality_by_subdivision1 "
            "where country_code = 'ZA' and period_start = ? "
            "order by download_sample_count desc limit 1",
            [OCT],
        ).fetchall()[0]
        city = con.execute(
            "select city from quality_by_city where country_code = 'ZA' and period_start = ? "
            "and city is not null order by download_sample_count desc limit 1",
            [OCT],
        ).fetchall()[0][0]
        asn, long_asn = (
            r[0]
            for r in con.execute(
                "select asn from quality_by_country_asn where country_code = 'ZA' "
                "and period_start = ? order by download_sample_count desc limit 2",
                [OCT],
            ).fetchall()
        )
        for table in (*tables(con, "quality"), *tables(con, "iqb_scores")):
            cols = {r[0] for r in con.execute(f"describe {table}").fetchall()}
            con.execute(
                f"update {table} set country_name = ? where country_code = 'ZA'", [hostile("name")]
            )
            if "subdivision1_iso_code" in cols:
                con.execute(
                    f"update {table} set subdivision1_iso_code = ?, subdivision1_name = ? "
                    "where country_code = 'ZA' and subdivision1_iso_code = ?",
                    [hostile("sub"), hostile("subname"), sub],
                )
            if "city" in cols:
                con.execute(
                    f"update {table} set city = ? where country_code = 'ZA' and city = ?",
                    [hostile("city"), city],
                )
            if "asn" in cols:
                con.execute(f"alter table {table} alter asn type varchar")
                con.execute(
                    f"update {table} set as_name = ? where country_code = 'ZA' and asn = ?",
                    [LONG_NAME, str(long_asn)],
                )
                con.execute(
                    f"update {table} set asn = ?, as_name = ? "
                    "where country_code = 'ZA' and asn = ?",
                    [hostile("asn"), hostile("asname"), str(asn)],
                )
            con.execute(f"update {table} set country_code = ? where country_code = 'ZA'", [CC])
        # and a code that is not a country, also markup
        con.execute(
            "insert into quality_by_country select * replace (? as country_code, "
            "false as is_known_country) from quality_by_country where country_code = 'BR'",
            [hostile("other")],
        )
    rep = write_html_report(root, work / "report")
    return {
        "work": work,
        "index": rep.index,
        "network": f"country_asn|{CC}|AS{hostile('asn')}|{hostile('asname')}",
        "long": f"country_asn|{CC}|AS{long_asn}|{LONG_NAME}",
        "city": f"city|{CC}|{hostile('sub')}|{hostile('city')}, {hostile('subname')}",
        "sub": f"subdivision1|{CC}|{hostile('sub')}|{hostile('subname')}",
    }


def hostile_url(report: dict, level: str, place: str, compare: list[str]) -> str:
    cmp = ",".join(quote(k, safe="") for k in compare)
    return (
        f"{report['index'].as_uri()}#country={quote(CC, safe='')}&level={level}"
        f"&place={quote(report[place], safe='')}&cmp={quote(cmp, safe='')}"
    )


def titles(fragment: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'title="([^"]*)"', fragment)]


def svg_size(fragment: str) -> tuple[float, float]:
    m = re.search(r'<svg[^>]*\bwidth="([\d.]+)"[^>]*\bheight="([\d.]+)"', fragment)
    assert m, "no chart drawn"
    return float(m[1]), float(m[2])


@pytest.mark.parametrize(
    ("level", "place", "compare"),
    [
        ("country_asn", "network", []),
        ("city", "city", ["network"]),
        ("subdivision1", "sub", []),
    ],
)
def test_hostile_values_are_text_and_nothing_runs(
    hostile_report: dict, level: str, place: str, compare: list[str]
) -> None:
    work: Path = hostile_report["work"] / level
    work.mkdir()
    page = render(
        hostile_url(hostile_report, level, place, [hostile_report[k] for k in compare]), work
    )
    dom = page.dom
    assert TITLE in dom  # no script ran
    assert '<i id="pwn-' not in dom  # no injected element (text is serialised &lt;i)
    assert page.page_requests == []  # the injected <img src=x> was never an element
    # the values are there, as text
    title = element(dom, "country-title")
    assert CC[:11] in text(title) and hostile("name")[:59] in text(title)  # shortened
    assert CC in titles(title) and hostile("name") in titles(title)  # whole, on hover

    drill = text(element(dom, "drill"))
    expected = {"country_asn": hostile("asname"), "city": hostile("city"), "subdivision1": None}
    shown = expected[level]
    if shown:
        assert shown[:40] in drill
    else:
        assert hostile("subname")[:40] in drill and hostile("sub")[:40] in drill
    assert any("pwn-other" in t for t in titles(element(dom, "not-countries")))
    # and the map and charts still render
    world = element(dom, "map")
    assert world.count("<path") > 150 and 'data-countries="' in world
    for chart in ("trend-score", "trend-download", "trend-tests"):
        fragment = element(dom, chart)
        width, height = svg_size(fragment)
        assert width > 200 and height > 150, (chart, width, height)
        assert fragment.count("<path") > 3, chart  # axes and the lines
    names = element(dom, "trend-download")
    places = html.unescape(found(r'data-places="([^"]*)"', names)[1])
    assert len(places) < 1000  # names shortened for the chart


CLICK_LONG_NAME = """
(function () {
  // the reader's clicks: the network with the long name, "Add to comparison", then the
  // hostile network (a URL cannot carry a 200,000-character name on a command line)
  var steps = [
    function () { return row('AAAA'); },
    function () { return button('Add to comparison'); },
    function () { return row('"><img'); }
  ];
  function row(start) {
    return Array.prototype.find.call(document.querySelectorAll('#drill tbody tr'), function (tr) {
      return tr.textContent.indexOf(start) === 0;
    });
  }
  function button(label) {
    return Array.prototype.find.call(document.querySelectorAll('#compare button'), function (b) {
      return b.textContent === label;
    });
  }
  var timer = setInterval(function () {
    var target = steps.length && steps[0]();
    if (target) { target.click(); steps.shift(); }
    if (!steps.length) {
      clearInterval(timer);
      setTimeout(function () {
        var out = document.getElementById('harness-out');
        out.textContent = JSON.stringify({ title: document.title });
      }, 500);
    }
  }, 200);
})();
"""


def test_a_200000_character_name_is_shortened_and_whole_on_hover(hostile_report: dict) -> None:
    work: Path = hostile_report["work"] / "long"
    work.mkdir()
    page_file = harness(hostile_report["index"].parent, CLICK_LONG_NAME)
    url = f"{page_file.as_uri()}#country={quote(CC, safe='')}&level=country_asn"
    page = render(url, work)
    dom = page.dom
    assert harness_result(dom) == {"title": "IQB report: Internet Quality Barometer"}
    assert '<i id="pwn-' not in dom
    drill = element(dom, "drill")
    shown = re.findall(r">(A+\u2026)<", drill)
    assert shown and all(len(t) <= 60 for t in shown)
    assert LONG_NAME in titles(drill)  # the whole name, on hover
    for chart in ("map", "trend-score", "trend-latency"):
        width, height = svg_size(element(dom, chart))
        assert width > 200 and height > 150, (chart, width, height)
    # both networks on the trend charts, side by side, under shortened names
    places = json.loads(
        html.unescape(found(r'data-places="([^"]*)"', element(dom, "trend-score"))[1])
    )
    assert len(places) == 2 and all(len(p) < 100 for p in places)
    assert places[1].startswith("AAAA") and places[0].startswith('"><img')
    assert "<path" in element(dom, "trend-score")
    compare = element(dom, "compare")
    assert any(LONG_NAME in t for t in titles(compare)) and len(text(compare)) < 300


def test_codes_that_are_not_countries_are_never_counted(demo_db: Path, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    materialise_published(demo_db / "iqb.duckdb", root / "iqb.duckdb")
    odd = ["", "Q1", "USA", "us"]
    with duckdb.connect(str(root / "iqb.duckdb")) as con:
        for code in odd:
            for table in ("quality_by_country", "iqb_scores_by_country"):
                con.execute(
                    f"insert into {table} select * replace (? as country_code, "
                    "false as is_known_country) from "
                    f"{table} where country_code = 'BR'",
                    [code],
                )
        (countries,) = con.execute(
            "select count(*) from quality_by_country where period_start = ? and is_known_country",
            [OCT],
        ).fetchall()[0]
    rep = write_html_report(root, tmp_path / "report")
    assert rep.countries == countries  # what `iqb report --html` prints
    _, summary = read_data_script(rep.directory / "data/summary.js")
    october = [r for r in rows(summary["countries"]) if r["period"] == 1]
    flagged = {r["country_code"]: r["is_known_country"] for r in october}
    assert all(flagged[c] is False for c in odd)  # kept in the data, flagged
    period = summary["periods"][1]
    assert (period["countries"], period["not_countries"]) == (countries, 4)

    page = render(f"{rep.index.as_uri()}#country=BR", tmp_path)
    world = element(page.dom, "map")
    assert f'data-countries="{countries}"' in world
    ranking = element(page.dom, "ranking")
    assert len(re.findall(r"<tr[ >]", ranking.split("<tbody>")[1])) == countries
    options = re.findall(r'<option value="([^"]*)"', element(page.dom, "country"))
    assert len(options) == countries and not set(odd) & set(options)
    note = text(element(page.dom, "not-countries"))
    assert note.startswith("4 row(s)") and all(f'"{c}"' in note for c in odd)


def test_marks_come_from_the_exact_values(demo_db: Path, tmp_path: Path) -> None:
    """25.0066 passes "> 25" in the database and is shown passing, with the digits that
    say so; exactly 25 fails it; loss is a ratio, as in the marts and the seeds."""
    root = tmp_path / "artifacts"
    root.mkdir()
    materialise_published(demo_db / "iqb.duckdb", root / "iqb.duckdb")
    with duckdb.connect(str(root / "iqb.duckdb")) as con:
        con.execute(
            "update quality_by_country set download_p95 = 25.0066, upload_p95 = 25.0 "
            "where country_code = 'ZA' and period_start = ?",
            [OCT],
        )
        latency, loss, score = con.execute(
            "select latency_p95, loss_p95, video_conferencing_score from iqb_scores_by_country "
            "where country_code = 'ZA' and period_start = ?",
            [OCT],
        ).fetchall()[0]
    rep = write_html_report(root, tmp_path / "report")
    page = render(f"{rep.index.as_uri()}#country=ZA", tmp_path)
    table = element(page.dom, "breakdown-table")
    conferencing = found(r'<tr data-use-case="video_conferencing">.*?</tr>', table, re.S)[0]
    cells = re.findall(r"<td[^>]*>.*?</td>", conferencing, re.S)
    download, upload = cells[2], cells[3]
    assert 'class="pass"' in download and "\u2713 25.01" in text(download)
    assert "meets > 25" in text(download)
    assert 'class="fail"' in upload and "\u2717 25 needs > 25" in text(upload)
    # the use-case score beside them is the same comparison (weights 4, 4, 4, 4)
    expected = (4 + 0 + 4 * (latency < 50) + 4 * (loss < 0.005)) / 16
    assert score != expected  # the database scored the value before the change
    assert text(cells[1]) == f"{expected:.3f}"
    head = text(table.split("<tbody>")[0])
    assert "ratio 0..1 < threshold" in head and "%" not in text(table.split("<tbody>")[1])
    assert "< 0.005" in text(cells[5])
