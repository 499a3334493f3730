"""``iqb report --html``: a self-contained, offline HTML report of the marts.

Reads only the relations ``quality_by_<level>``, ``iqb_scores_by_<level>``
and the seeds from ``<artifacts>/iqb.duckdb``, read-only and by name, and
writes a folder that opens from ``file://`` with no network::

    report/index.html
    report/assets/   echarts.min.js, topojson-client.min.js, world-110m.js and
                     admin1.js (Natural Earth), loader.js, report.js, report.css
    report/data/     summary.js (countries, every period: map, trends, use cases,
                     provenance) and drill-<period>.js (subdivisions, cities and
                     networks of every country, loaded when that period is shown)

Data files are scripts (``IQB.summary(...)``, ``IQB.drill(...)``), not JSON:
a browser does not let a page opened from ``file://`` fetch JSON.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pycountry

from extract.cache.hashindex import file_sha256
from extract.paths import ArtifactPaths
from extract.results.html.data import RELATIONS, read_drill, read_summary, read_use_cases
from extract.results.report import DBT_BUILD, ReportError, open_database

VENDOR = Path(__file__).resolve().parent / "vendor" / "node_modules"
# (file in the npm packages of vendor/package.json, name in the report's assets/)
VENDOR_FILES = (
    ("echarts/dist/echarts.min.js", "echarts.min.js"),
    ("topojson-client/dist/topojson-client.min.js", "topojson-client.min.js"),
)
WORLD = "world-atlas/countries-110m.json"
# Natural Earth admin-1 boundaries keyed by ISO 3166-2 code (geo/README.md: provenance)
ADMIN1 = Path(__file__).resolve().parent / "geo" / "admin1.topojson"
STATIC = ("index.html", "loader.js", "report.js", "report.css")
FILES_PLACEHOLDER = "window.IQB_FILES = {};"
LOADER_PLACEHOLDER = "LOADER_SHA256"
DEFAULT_DRILL_LIMIT = 50


@dataclass
class HtmlReport:
    directory: Path
    index: Path
    periods: int
    countries: int
    files: dict[str, int] = field(default_factory=dict)  # relative path -> bytes

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


def write_html_report(
    artifacts: Path, out_dir: Path | None = None, drill_limit: int = DEFAULT_DRILL_LIMIT
) -> HtmlReport:
    """Build the report folder (default ``<artifacts>/report``); return what was written."""
    missing_vendor = [src for src, _ in VENDOR_FILES if not (VENDOR / src).is_file()]
    if not ADMIN1.is_file():
        raise ReportError(
            f"the region boundaries {ADMIN1} are missing: they ship with the "
            "checkout (extract/results/html/geo/); restore them with `git checkout`"
        )
    if missing_vendor or not (VENDOR / WORLD).is_file():
        raise ReportError(
            f"the report's charting library and map are not installed under "
            f"{VENDOR}: run `make setup` (it runs `npm ci --prefix "
            f"{VENDOR.parent}`)"
        )
    path = ArtifactPaths(artifacts).database
    with open_database(path) as con:
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'main'"
            ).fetchall()
        }
        needed = [*RELATIONS, "iqb_requirements", "iqb_use_cases"]
        missing = [n for n in needed if n not in tables]
        if missing:
            raise ReportError(f"{path} lacks {', '.join(missing)}: run `{DBT_BUILD}`")
        use_cases = read_use_cases(con)
        summary = read_summary(con, path, use_cases)
        if not summary["periods"]:
            raise ReportError(
                f"{path} has no rows in quality_by_country: extract some "
                "data and run `dbt build` first"
            )
        drills = {
            p["id"]: read_drill(
                con,
                date.fromisoformat(p["start"]),
                date.fromisoformat(p["end"]),
                drill_limit,
            )
            for p in summary["periods"]
        }

    out = (out_dir or ArtifactPaths(artifacts).report).absolute()
    _check_target(out)
    assets, data = out / "assets", out / "data"
    for folder in (assets, data):
        if folder.exists():
            shutil.rmtree(folder)  # no file of a vanished period lingers
        folder.mkdir(parents=True)
    for src, name in VENDOR_FILES:
        shutil.copyfile(VENDOR / src, assets / name)
    world = json.loads((VENDOR / WORLD).read_text())
    _add_alpha2(world)
    (assets / "world-110m.js").write_text(
        "window.IQB_WORLD = " + json.dumps(world, separators=(",", ":")) + ";\n"
    )
    (assets / "admin1.js").write_text("window.IQB_ADMIN1 = " + ADMIN1.read_text().strip() + ";\n")
    static = resources.files("extract.results.html").joinpath("static")
    for name in STATIC:
        if name not in ("index.html", "loader.js"):
            (assets / name).write_text(static.joinpath(name).read_text())
    for period, drill in drills.items():
        summary["drill_files"][period] = f"data/drill-{period}.js"
        _write_js(data / f"drill-{period}.js", "IQB.drill", drill, key=period)
    _write_js(data / "summary.js", "IQB.summary", summary)
    # last: the loader names the SHA-256 of every other file (its bucket addresses), and
    # the page names the loader's; no script is inline (the page's Content-Security-Policy
    # allows none), so the page names the loader at both of its possible addresses
    hashes = {
        str(p.relative_to(out)): file_sha256(p)
        for folder in (assets, data)
        for p in sorted(folder.iterdir())
    }
    loader = static.joinpath("loader.js").read_text()
    (assets / "loader.js").write_text(
        loader.replace(FILES_PLACEHOLDER, f"window.IQB_FILES = {json.dumps(hashes)};", 1)
    )
    page = static.joinpath("index.html").read_text()
    (out / "index.html").write_text(
        page.replace(LOADER_PLACEHOLDER, file_sha256(assets / "loader.js"), 1)
    )

    files = {
        str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()
    }
    return HtmlReport(
        out,
        out / "index.html",
        len(summary["periods"]),
        # countries are codes of the ISO seed (and XK): other codes stay in the data, flagged
        len({r[1] for r in summary["countries"]["rows"] if r[3]}),
        files,
    )


def _check_target(out: Path) -> None:
    """Write only into a new or empty folder, or over an earlier report (its assets/ and
    data/ are replaced): never clear the data/ of a folder that is something else."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out} is a file: give a folder for the report")
    if not out.is_dir() or not any(out.iterdir()):
        return
    index = out / "index.html"
    if not (index.is_file() and "iqb report --html" in index.read_text(errors="replace")):
        raise ReportError(
            f"{out} is not empty and holds no earlier IQB report: give a new "
            "or empty folder (the report replaces its assets/ and data/)"
        )


def _write_js(path: Path, function: str, payload: Any, key: str | None = None) -> None:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str)
    args = f"{json.dumps(key)}," if key is not None else ""
    path.write_text(f"{function}({args}{body});\n")


def _add_alpha2(world: dict[str, Any]) -> None:
    """Give each country of the Natural Earth geometry its ISO alpha-2 code (property cc).

    world-atlas identifies countries by ISO 3166-1 numeric code; three have
    none (Kosovo: XK, as M-Lab's geolocation says; N. Cyprus, Somaliland: no code).
    """
    by_name = {"Kosovo": "XK"}
    for geometry in world["objects"]["countries"]["geometries"]:
        props = geometry.setdefault("properties", {})
        numeric = geometry.get("id")
        country = pycountry.countries.get(numeric=numeric) if numeric else None
        props["cc"] = country.alpha_2 if country else by_name.get(props.get("name", ""))
