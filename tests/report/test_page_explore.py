"""The report explores: any of the nine percentiles, any thresholds and weights, computed in
the page, equal to the database's own calculator; any place over time; the region map.

Expected scores. The database has score views at the build's percentile only (95). The
tests score every row of the quality marts at each of the nine percentiles with
``score_sql``: one SQL expression per level, written here from the score macro's rules
(strict comparisons, weighted means in the macro's order, a requirement of weight 0
counting 0, NULL for a missing value a weighted requirement needs and for rows that are
thin, not a country or carry invalid values), with the seeds' weights and thresholds
inlined. That expression is itself checked, bit for bit, against the database's score
views (p95) and against the score macro compiled by dbt at p50 and run over the same
marts, so the page is compared with what a build at each percentile gives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pytest

from extract.results.html.build import write_html_report
from extract.results.html.data import DRILL_LEVELS, period_id, read_use_cases
from extract.sync.snapshot import materialise_published
from tests.dbt.helpers import dbt
from tests.report.helpers import element, harness, harness_result, render

pytestmark = pytest.mark.slow
PCTS = (1, 5, 10, 25, 50, 75, 90, 95, 99)
REQUIREMENTS = {  # requirement -> (metric, comparison that passes), the macro's order
    "download_throughput_mbps": ("download", ">"),
    "upload_throughput_mbps": ("upload", ">"),
    "latency_ms": ("latency", "<"),
    "packet_loss": ("loss", "<"),
}
LEVEL_KEYS = {level: (label, code) for level, label, code in DRILL_LEVELS}
Config = dict[str, Any]  # {"uc": {use_case: weight}, "req": {use_case: {req: (w, t)}}}


def seed_config(con: duckdb.DuckDBPyConnection) -> tuple[list[str], Config]:
    order = read_use_cases(con)
    cfg: Config = {"uc": dict(con.execute("select use_case, weight from iqb_use_cases").fetchall())}
    cfg["req"] = {u: {} for u in order}
    for u, req, w, t in con.execute(
        "select use_case, requirement, weight, threshold from iqb_requirements"
    ).fetchall():
        cfg["req"][u][req] = (w, t)
    return order, cfg


def lit(v: float) -> str:
    return f"{float(v)!r}::double"


def score_sql(use_cases: list[str], cfg: Config, pct: int) -> str:
    """The score columns of one quality-mart row ``q`` at ``pct`` with ``cfg`` (see above)."""
    eligible = "(q.meets_min_samples and q.is_known_country and not q.has_invalid_values)"
    cols = []
    for u in use_cases:
        terms, weights = [], []
        for req, (metric, op) in REQUIREMENTS.items():
            w, t = cfg["req"][u].get(req, (0, None))
            weights.append(lit(w))
            if w == 0:
                terms.append("0")
            else:
                terms.append(f"{lit(w)} * (q.{metric}_p{pct} {op} {lit(t)})::integer")
        cols.append(
            f"if({eligible}, ({' + '.join(terms)}) / nullif({' + '.join(weights)}, 0), null) "
            f"as {u}_score"
        )
    uc_terms = [
        "0" if cfg["uc"].get(u, 0) == 0 else f"{lit(cfg['uc'][u])} * {u}_score" for u in use_cases
    ]
    uc_weights = " + ".join(lit(cfg["uc"].get(u, 0)) for u in use_cases)
    return (
        f"select *, ({' + '.join(uc_terms)}) / nullif({uc_weights}, 0) as iqb_score "
        f"from (select q.*, {', '.join(cols)} from {{mart}} as q) as q"
    )


def status_sql() -> str:
    return (
        "case when not is_known_country then 'unknown_country' "
        "when has_invalid_values then 'invalid_values' "
        "when not meets_min_samples then 'too_few_samples' "
        "when iqb_score is null then 'missing_values' else 'scored' end"
    )


def keyed_rows(
    con: duckdb.DuckDBPyConnection, scores: str, source: Callable[[str], str]
) -> dict[str, list]:
    """page key -> the ``scores`` columns, for every row of the four levels the page has;
    ``source(level)`` is the relation the rows come from."""
    out: dict[str, list] = {}
    for level in ("country", *LEVEL_KEYS):
        if level == "country":
            key_cols = "q.country_code::varchar, null, null"
        else:
            label, code = LEVEL_KEYS[level]
            key_cols = f"q.country_code::varchar, ({label}), ({code})"
        for start, end, cc, label_v, code_v, *values in con.execute(
            f"select q.period_start, q.period_end, {key_cols}, {scores} from {source(level)} as q"
        ).fetchall():
            parts = (
                ["country", cc]
                if level == "country"
                else [level, cc, code_v or "", label_v or ""]  # JS join: null -> ''
            )
            key = f"{period_id(start, end)}|{'|'.join(parts)}"
            assert key not in out, f"two rows named {key}"
            out[key] = values
    return out


def expected_rows(
    con: duckdb.DuckDBPyConnection, use_cases: list[str], cfg: Config, pct: int
) -> dict[str, list]:
    """[iqb, use cases..., status] per page key, by the test's own expression of the score."""
    scores = ", ".join(["iqb_score", *(f"{u}_score" for u in use_cases), status_sql()])
    sql = score_sql(use_cases, cfg, pct)
    return keyed_rows(
        con, scores, lambda level: f"({sql.replace('{mart}', f'quality_by_{level}')})"
    )


def database_rows(
    con: duckdb.DuckDBPyConnection, use_cases: list[str], pct: int
) -> dict[str, list]:
    """The same, read from the database's own scores at ``pct`` (the all-percentiles views)."""
    scores = ", ".join(["iqb_score", *(f"{u}_score" for u in use_cases), "score_status"])
    return keyed_rows(
        con,
        scores,
        lambda level: (
            f"(select * from iqb_scores_all_percentiles_by_{level} where score_percentile = {pct})"
        ),
    )


def test_score_sql_is_the_macro(demo_db: Path, tmp_path: Path) -> None:
    """The test's expression equals the database (p95) and the macro compiled at p50."""
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        use_cases, cfg = seed_config(con)
        cols = ", ".join(["iqb_score", *(f"{u}_score" for u in use_cases), "score_status"])
        for level in ("country", *LEVEL_KEYS):
            keys = (
                "period_start, period_end, "
                + {
                    "country": "country_code",
                    "subdivision1": "country_code, subdivision1_iso_code, subdivision1_name",
                    "city": "country_code, subdivision1_iso_code, subdivision1_name, city",
                    "country_asn": "country_code, asn",
                }[level]
            )
            mine = score_sql(use_cases, cfg, 95).replace("{mart}", f"quality_by_{level}")
            got = con.execute(
                f"select {keys}, {cols.replace('score_status', status_sql())} from ({mine}) "
                "order by all"
            ).fetchall()
            db = con.execute(f"select {keys}, {cols} from iqb_scores_by_{level} order by all")
            assert got == db.fetchall(), level
    # the macro at p50, compiled by dbt against a copy, run over the same marts
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "iqb.duckdb").write_bytes((demo_db / "iqb.duckdb").read_bytes())
    target = tmp_path / "target"
    dbt(
        "compile",
        "--select",
        "iqb_scores_by_country",
        "iqb_scores_by_city",
        "--vars",
        "{iqb_percentile: 50}",
        artifacts=root,
        target=target,
    )
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        for level, keys in (
            ("country", "country_code"),
            ("city", "country_code, subdivision1_iso_code, subdivision1_name, city"),
        ):
            compiled = (
                target / "compiled/iqb/models/marts/scores" / f"iqb_scores_by_{level}.sql"
            ).read_text()
            # the relations as the database publishes them (schema main), not dbt's build schema
            compiled = re.sub(r'"iqb"\."\w+"\.', "", compiled)
            macro = con.execute(
                f"select period_start, period_end, {keys}, {cols} from ({compiled}) order by all"
            ).fetchall()
            mine = score_sql(use_cases, cfg, 50).replace("{mart}", f"quality_by_{level}")
            got = con.execute(
                f"select period_start, period_end, {keys}, "
                f"{cols.replace('score_status', status_sql())} from ({mine}) order by all"
            ).fetchall()
            assert got == macro and any(r[-1] == "scored" for r in got), level


CHECK_ALL = """
(function () {
  // the page's own calculator (IQB.score) over every row it holds, at each percentile,
  // against the expected values (expected.js), exactly
  var timer = setInterval(function () {
    if (!window.IQB || !IQB.data || !window.EXPECTED) return;
    clearInterval(timer);
    IQB.loadAllDrills(function () {
      var cfg = window.USE_PAGE_CONFIG ? IQB.config() : IQB.defaultConfig();
      var ucs = IQB.data.use_cases.map(function (u) { return u.use_case; });
      var out = { checked: {}, mismatches: [], missing: [], state: IQB.state(),
                  changed: document.querySelectorAll('#whatif-table input.changed').length };
      Object.keys(window.EXPECTED).forEach(function (p) {
        var exp = window.EXPECTED[p], n = 0;
        function check(key, r) {
          var e = exp[key];
          if (!e) { out.missing.push(key); return; }
          var s = IQB.score(r, Number(p), cfg);
          var got = [s.iqb].concat(ucs.map(function (u) { return s.uc[u]; })).concat([s.status]);
          for (var i = 0; i < got.length; i++) {
            if (got[i] !== e[i]) { out.mismatches.push([p, key, got, e]); break; }
          }
          n++;
        }
        IQB.countries.forEach(function (r) {
          check(IQB.data.periods[r.period].id + '|country|' + r.country_code, r);
        });
        IQB.data.periods.forEach(function (per) {
          Object.keys(IQB.drills[per.id].objects).forEach(function (l) {
            IQB.drills[per.id].objects[l].forEach(function (r) { check(per.id + '|' + r.key, r); });
          });
        });
        out.checked[p] = n;
      });
      out.mismatches = out.mismatches.slice(0, 10);
      out.missing = out.missing.slice(0, 10);
      out.map = Object.assign({}, document.getElementById('map').dataset);
      out.bench = IQB.benchRescore(50);
      document.getElementById('harness-out').textContent = JSON.stringify(out);
    });
  }, 100);
})();
"""


def write_expected(report: Path, expected: dict[int, dict[str, list]], page_config: bool) -> None:
    (report / "expected.js").write_text(
        f"window.USE_PAGE_CONFIG = {json.dumps(page_config)};\n"
        f"window.EXPECTED = {json.dumps(expected, allow_nan=False)};\n"
    )
    script = CHECK_ALL.replace("(function () {", "(function () {\n  // see expected.js", 1)
    page = harness(report, script)
    # expected.js first: the harness waits for it
    text = page.read_text().replace(
        '<script src="harness.js">', '<script src="expected.js"></script><script src="harness.js">'
    )
    page.write_text(text)


def test_every_cell_at_every_percentile_equals_the_database(demo_db: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        use_cases, _ = seed_config(con)
        expected = {p: database_rows(con, use_cases, p) for p in PCTS}
        (countries_p50,) = con.execute(
            "select count(*) from quality_by_country where period_start = '2024-10-01' "
            "and is_known_country"
        ).fetchall()[0]
    rep = write_html_report(demo_db, tmp_path / "report")
    write_expected(rep.directory, expected, page_config=False)
    page = render(f"{(rep.directory / 'harness.html').as_uri()}#pct=50", tmp_path)
    result = harness_result(page.dom)
    assert result["mismatches"] == [] and result["missing"] == []
    drill_rows = sum(1 for k in expected[95] if "|country|" not in k)
    assert all(n > 1000 for n in result["checked"].values()), result["checked"]
    assert len(result["checked"]) == 9 and drill_rows > 1000
    # the page shown at p50: the map's scored countries are the expected ones
    scored = sum(
        1
        for k, v in expected[50].items()
        if k.startswith("2024-10-01|country|") and v[-1] == "scored"
    )
    assert result["state"]["pct"] == 50
    assert result["map"]["pct"] == "50" and result["map"]["scored"] == str(scored)
    assert result["map"]["countries"] == str(countries_p50)
    assert result["bench"] >= 0  # the benchmark's hook: ms to rescore every country at p50


def test_what_if_config_from_the_link_recomputes_and_resets(demo_db: Path, tmp_path: Path) -> None:
    """Thresholds and weights from the link: the page scores with them as the SQL does."""
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        use_cases, cfg = seed_config(con)
        changed = json.loads(json.dumps(cfg))
        changed["req"]["gaming"]["latency_ms"] = [5, 20.5]  # threshold 10 -> 20.5
        changed["req"]["web_browsing"]["packet_loss"] = [0, 0.01]  # weight 4 -> 0
        changed["uc"]["video_streaming"] = 3  # weight 1 -> 3
        expected = {50: expected_rows(con, use_cases, changed, 50)}
        default = expected_rows(con, use_cases, cfg, 50)
    assert expected[50] != default  # the change changes scores
    rep = write_html_report(demo_db, tmp_path / "report")
    write_expected(rep.directory, expected, page_config=True)
    link = "#pct=50&t.gaming.latency_ms=20.5&w.web_browsing.packet_loss=0&w.video_streaming=3"
    page = render(f"{(rep.directory / 'harness.html').as_uri()}{link}", tmp_path)
    result = harness_result(page.dom)
    assert result["mismatches"] == [] and result["missing"] == []
    assert result["checked"]["50"] > 1000 and result["changed"] == 3
    # a reset returns to the build's config, and the link forgets the changes
    reset = RESET.replace("EXPECTED_DEFAULT", json.dumps(cfg["uc"]))
    page_file = harness(rep.directory, reset, name="reset")
    result = harness_result(render(f"{page_file.as_uri()}{link}", tmp_path).dom)
    assert result["before"] == 3 and result["after"] == 0
    assert "t.gaming" in result["hash_before"] and "t.gaming" not in result["hash_after"]
    assert result["uc"] == cfg["uc"]


RESET = """
(function () {
  var timer = setInterval(function () {
    if (!window.IQB || !IQB.data || !document.querySelector('#whatif-table input')) return;
    clearInterval(timer);
    var out = { before: document.querySelectorAll('#whatif-table input.changed').length,
                hash_before: location.hash };
    document.getElementById('whatif-reset').click();
    out.after = document.querySelectorAll('#whatif-table input.changed').length;
    out.hash_after = location.hash;
    out.uc = IQB.config().uc;
    document.getElementById('harness-out').textContent = JSON.stringify(out);
  }, 100);
})();
"""


CLICK_REGION = """
(function () {
  // a reader's click on a region of the map: mousedown, mouseup and click at a point
  // of a coloured region's shape
  var timer = setInterval(function () {
    var map = document.getElementById('region-map');
    var paths = Array.prototype.filter.call(map.querySelectorAll('path'), function (p) {
      var fill = p.getAttribute('fill') || '';
      return fill && fill !== 'none' && fill !== '#ffffff' && fill !== '#fff' &&
        !/^#eef3f7/.test(fill) &&
        p.getBBox().width > 8 && p.getBBox().height > 8;
    });
    if (!paths.length) return;
    clearInterval(timer);
    var out = { regions: map.dataset.regions, missing: map.dataset.missing,
                coloured: paths.length };
    var target = null;
    paths.some(function (path) {
      var box = path.getBoundingClientRect();
      for (var i = 1; i < 10 && !target; i++) {
        for (var j = 1; j < 10 && !target; j++) {
          var x = box.left + box.width * i / 10, y = box.top + box.height * j / 10;
          if (document.elementFromPoint(x, y) === path) target = { x: x, y: y };
        }
      }
      return target;
    });
    out.clicked = !!target;
    if (target) {
      var at = document.elementFromPoint(target.x, target.y);
      ['mousemove', 'mousedown', 'mouseup', 'click'].forEach(function (type) {
        at.dispatchEvent(new MouseEvent(type, { bubbles: true, cancelable: true, clientX: target.x,
                                                clientY: target.y, button: 0, view: window }));
      });
    }
    setTimeout(function () {
      out.state = IQB.state();
      var sel = document.querySelector('#drill tbody tr.selected');
      out.selected = sel ? sel.textContent : null;
      out.note = document.getElementById('region-note').textContent;
      document.getElementById('harness-out').textContent = JSON.stringify(out);
    }, 300);
  }, 100);
})();
"""


def test_region_map_is_coloured_and_a_click_drills_down(demo_db: Path, tmp_path: Path) -> None:
    """South Africa's subdivisions under Natural Earth's codes; one left with a code no
    boundary has, which the page lists and does not place."""
    root = tmp_path / "artifacts"
    root.mkdir()
    materialise_published(demo_db / "iqb.duckdb", root / "iqb.duckdb")
    codes = ["ZA-GT", "ZA-WC", "ZA-NL", "ZA-EC", "ZA-FS"]
    with duckdb.connect(str(root / "iqb.duckdb")) as con:
        synthetic = [
            r[0]
            for r in con.execute(
                "select distinct subdivision1_iso_code from quality_by_subdivision1 "
                "where country_code = 'ZA' order by 1"
            ).fetchall()
        ]
        assert len(synthetic) > len(codes)
        for old, new in zip(synthetic, codes, strict=False):
            con.execute(
                "update quality_by_subdivision1 set subdivision1_iso_code = ? "
                "where country_code = 'ZA' and subdivision1_iso_code = ?",
                [new, old],
            )
        shown = con.execute(
            "select count(*) filter (where subdivision1_iso_code like 'ZA-__'), "
            "count(*) filter (where subdivision1_iso_code not like 'ZA-__') "
            "from quality_by_subdivision1 where country_code = 'ZA' and period_start = '2024-10-01'"
        ).fetchall()[0]
    rep = write_html_report(root, tmp_path / "report")
    page_file = harness(rep.directory, CLICK_REGION, name="region")
    page = render(f"{page_file.as_uri()}#country=ZA&level=city", tmp_path)
    result = harness_result(page.dom)
    assert (int(result["regions"]), int(result["missing"])) == shown and shown[1] > 0
    assert result["coloured"] >= 1 and result["clicked"]
    # the click chose that region: the drill-down shows subdivisions, its row selected
    assert result["state"]["level"] == "subdivision1"
    assert str(result["state"]["place"]).startswith("subdivision1|ZA|ZA-")
    assert result["selected"] and "Synthetic Region" in result["selected"]
    assert "No boundary for" in result["note"] and "ZA-S0" in result["note"]
    region = element(page.dom, "region-map")
    assert region.count("<path") >= 9  # every South African province drawn


COMPARE = """
(function () {
  // one network followed across countries: "Compare this network in every country";
  // then what each table gives as CSV and whether each chart saves an image
  var clicked = false, tries = 0;
  var timer = setInterval(function () {
    if (!window.IQB || !IQB.data) return;
    var button = Array.prototype.find.call(document.querySelectorAll('#compare button'),
      function (b) { return b.textContent === 'Compare this network in every country'; });
    if (!clicked) { if (button) { button.click(); clicked = true; } return; }
    var places = JSON.parse(document.getElementById('trend-download').dataset.places || '[]');
    var both = places.some(function (p) { return p.indexOf('BR)') >= 0; }) &&
      document.getElementById('region-map').dataset.regions !== undefined;  // its regions loaded
    if (!both && ++tries < 100) return;
    clearInterval(timer);
    var out = { places: places, tables: {}, charts: {} };
    out.csvButtons = Array.prototype.map.call(document.querySelectorAll('button.csv'),
      function (b) { return b.dataset.table; });
    Array.prototype.forEach.call(document.querySelectorAll('table'), function (t) {
      if (t.id) out.tables[t.id] = IQB.tableCsv(t.id).slice(0, 4);
    });
    Array.prototype.forEach.call(document.querySelectorAll('.chart'), function (el) {
      var chart = echarts.getInstanceByDom(el);
      var box = chart && chart.getOption().toolbox;
      out.charts[el.id] = !!(box && box[0] && box[0].feature && box[0].feature.saveAsImage);
    });
    var trend = echarts.getInstanceByDom(document.getElementById('trend-download')).getOption();
    out.series = trend.series.map(function (s) {
      return s.data.map(function (d) { return d && typeof d === 'object' ? d.value : d; });
    });
    document.getElementById('harness-out').textContent = JSON.stringify(out);
  }, 100);
})();
"""


def test_places_side_by_side_tables_as_csv_charts_as_images(demo_db: Path, tmp_path: Path) -> None:
    """A South African network that also serves Brazil, followed across both countries:
    its trend in each, at the score percentile, every period; every table as CSV."""
    root = tmp_path / "artifacts"
    root.mkdir()
    materialise_published(demo_db / "iqb.duckdb", root / "iqb.duckdb")
    with duckdb.connect(str(root / "iqb.duckdb")) as con:
        (za_asn, name), (br_asn,) = (
            con.execute(
                "select asn, as_name from quality_by_country_asn where country_code = 'ZA' "
                "and period_start = '2024-10-01' order by download_sample_count desc limit 1"
            ).fetchall()[0],
            con.execute(
                "select asn from quality_by_country_asn where country_code = 'BR' "
                "and period_start = '2024-10-01' order by download_sample_count desc limit 1"
            ).fetchall()[0],
        )
        con.execute(
            "update quality_by_country_asn set asn = ?, as_name = ? "
            "where country_code = 'BR' and asn = ?",
            [za_asn, name, br_asn],
        )
        expected = {
            cc: [
                v
                for (v,) in con.execute(
                    "select download_p95 from quality_by_country_asn where country_code = ? "
                    "and asn = ? order by period_start",
                    [cc, za_asn],
                ).fetchall()
            ]
            for cc in ("ZA", "BR")
        }
    rep = write_html_report(root, tmp_path / "report")
    page_file = harness(rep.directory, COMPARE, name="compare")
    key = f"country_asn|ZA|AS{za_asn}|{name}"
    url = f"{page_file.as_uri()}#country=ZA&level=country_asn&place={quote(key, safe='')}"
    page = render(url, tmp_path)
    result = harness_result(page.dom)
    assert len(result["places"]) == 2
    assert "ZA" in result["places"][0] and "BR" in result["places"][1]
    assert result["series"] == [expected["ZA"], expected["BR"]]  # both periods, exact
    # every table of the page is downloadable, every chart saves an image
    tables = result["tables"]
    assert (
        set(result["csvButtons"])
        == set(tables)
        >= {
            "ranking",
            "drill",
            "breakdown-table",
            "periods-table",
            "config-table",
            "whatif-table",
        }
    )
    assert tables["drill"][0][:3] == ["label", "code", "download_sample_count"]
    assert all(result["charts"].values()) and len(result["charts"]) >= 8
    with duckdb.connect(str(root / "iqb.duckdb"), read_only=True) as con:
        top = con.execute(
            "select as_name, download_sample_count from quality_by_country_asn "
            "where country_code = 'ZA' and period_start = '2024-10-01' "
            "order by download_sample_count desc limit 1"
        ).fetchall()[0]
    assert tables["drill"][1][0] == top[0] and tables["drill"][1][2] == top[1]


EDIT = """
(function () {
  // a reader edits one threshold in the what-if panel: gaming latency 10 -> 0.5 ms
  var timer = setInterval(function () {
    var input = document.querySelector(
      '#whatif-table input[aria-label="gaming latency_ms threshold"]');
    if (!window.IQB || !IQB.data || !input) return;
    clearInterval(timer);
    var map = document.getElementById('map');
    var out = { before: map.dataset.scored, hash_before: location.hash,
                score_before: document.querySelector('#breakdown-table tr[data-use-case="gaming"]')
                  .children[1].textContent };
    input.value = '0.5';
    input.dispatchEvent(new Event('change'));
    out.hash_after = location.hash;
    out.score_after = document.querySelector('#breakdown-table tr[data-use-case="gaming"]')
      .children[1].textContent;
    out.changed = input.classList.contains('changed');
    out.config = IQB.config().req.gaming.latency_ms;
    document.getElementById('harness-out').textContent = JSON.stringify(out);
  }, 100);
})();
"""


def test_editing_a_threshold_recomputes_at_once(demo_db: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True) as con:
        use_cases, cfg = seed_config(con)
        changed = json.loads(json.dumps(cfg))
        changed["req"]["gaming"]["latency_ms"] = [cfg["req"]["gaming"]["latency_ms"][0], 0.5]
        before = expected_rows(con, use_cases, cfg, 95)["2024-10-01|country|ZA"]
        after = expected_rows(con, use_cases, changed, 95)["2024-10-01|country|ZA"]
    gaming = use_cases.index("gaming") + 1
    assert before[gaming] != after[gaming]  # the edit matters for South Africa
    rep = write_html_report(demo_db, tmp_path / "report")
    page_file = harness(rep.directory, EDIT, name="edit")
    result = harness_result(render(f"{page_file.as_uri()}#country=ZA", tmp_path).dom)
    assert result["score_before"] == f"{before[gaming]:.3f}"
    assert result["score_after"] == f"{after[gaming]:.3f}"  # at once, in the breakdown
    assert "t.gaming.latency_ms=0.5" in result["hash_after"]
    assert "t.gaming" not in result["hash_before"]
    assert result["changed"] and result["config"] == {"w": 5, "t": 0.5}
