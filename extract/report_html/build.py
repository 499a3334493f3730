"""``iqb report --html``: a self-contained, offline HTML report of the marts.

Reads only the relations ``quality_by_<level>``, ``iqb_scores_by_<level>``
and the seeds from ``<artifacts>/iqb.duckdb``, read-only and by name, and
writes a folder that opens from ``file://`` with no network::

    report/index.html
    report/assets/   echarts.min.js, topojson-client.min.js, world-110m.js (Natural Earth),
                     report.js, report.css
    report/data/     summary.js (countries, every period: map, trends, use cases,
                     provenance) and drill-<period>.js (subdivisions, cities and
                     networks of every country, loaded when that period is shown)

Data files are scripts (``IQB.summary(...)``, ``IQB.drill(...)``), not JSON:
a browser does not let a page opened from ``file://`` fetch JSON.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pycountry

from extract.months import is_one_month
from extract.paths import ArtifactPaths
from extract.report import DBT_BUILD, MARTS, SCORES, ReportError, connect_readonly
from extract.report_html.provenance import period_sources

VENDOR = Path(__file__).resolve().parent / "vendor" / "node_modules"
# (file in the npm packages of vendor/package.json, name in the report's assets/)
VENDOR_FILES = (
    ("echarts/dist/echarts.min.js", "echarts.min.js"),
    ("topojson-client/dist/topojson-client.min.js", "topojson-client.min.js"),
)
WORLD = "world-atlas/countries-110m.json"
STATIC = ("index.html", "report.js", "report.css")
METRICS = ("download", "upload", "latency", "loss")
# Drill-down levels and how a row is named: (level, label SQL, code SQL); q = the mart
DRILL_LEVELS = (
    ("subdivision1", "q.subdivision1_name", "q.subdivision1_iso_code"),
    ("city", "q.city || ', ' || q.subdivision1_name", "q.subdivision1_iso_code"),
    ("country_asn", "q.as_name", "'AS' || q.asn"),
)
PLACE_KEYS = {
    "country": ("country_code",),
    "subdivision1": ("country_code", "subdivision1_iso_code", "subdivision1_name"),
    "city": ("country_code", "subdivision1_iso_code", "subdivision1_name", "city"),
    "country_asn": ("country_code", "asn"),
}
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
    if missing_vendor or not (VENDOR / WORLD).is_file():
        raise ReportError(
            f"the report's charting library and map are not installed under "
            f"{VENDOR}: run `make setup` (it runs `npm ci --prefix "
            f"{VENDOR.parent}`)"
        )
    path = ArtifactPaths(artifacts).database
    con = connect_readonly(path)
    try:
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'main'"
            ).fetchall()
        }
        needed = [
            *(f"quality_by_{lvl}" for lvl in ("country", "subdivision1", "city", "country_asn")),
            *(f"iqb_scores_by_{lvl}" for lvl in ("country", "subdivision1", "city", "country_asn")),
            "iqb_requirements",
            "iqb_use_cases",
        ]
        missing = [n for n in needed if n not in tables]
        if missing:
            raise ReportError(f"{path} lacks {', '.join(missing)}: run `{DBT_BUILD}`")
        use_cases = _use_cases(con)
        summary = _summary(con, path, use_cases)
        if not summary["periods"]:
            raise ReportError(
                f"{path} has no rows in quality_by_country: extract some "
                "data and run `dbt build` first"
            )
        drills = {
            p["start"]: _drill(con, p["start"], drill_limit, summary["percentiles"], use_cases)
            for p in summary["periods"]
        }
    finally:
        con.close()

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
    static = resources.files("extract.report_html").joinpath("static")
    for name in STATIC:
        target = out / name if name == "index.html" else assets / name
        target.write_text(static.joinpath(name).read_text())
    for start, drill in drills.items():
        summary["drill_files"][start] = f"data/drill-{start}.js"
        _write_js(data / f"drill-{start}.js", "IQB.drill", drill, key=start)
    _write_js(data / "summary.js", "IQB.summary", summary)

    files = {
        str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()
    }
    return HtmlReport(
        out,
        out / "index.html",
        len(summary["periods"]),
        len({r[1] for r in summary["countries"]["rows"]}),
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


def _num(value: Any, digits: int = 3) -> Any:
    """Round floats to the ``digits`` significant digits the report shows: a smaller file.

    Scores are multiples of the seed weights' fractions; 4 decimals keep them exact enough."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return float(f"{value:.{digits}g}")
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _metric_columns(percentiles: list[int]) -> list[str]:
    return [f"{m}_p{p}" for m in METRICS for p in percentiles]


def _score_percentile(con: duckdb.DuckDBPyConnection) -> int:
    cols = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'main' and table_name = 'iqb_scores_by_country'"
        ).fetchall()
    }
    if "score_percentile" not in cols:
        return 95
    value = con.execute("select max(score_percentile) from iqb_scores_by_country").fetchone()[0]
    return int(value) if value is not None else 95


def _use_cases(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The use cases as the database has them: its score columns ``<use_case>_score``,
    in their order (the seed iqb_use_cases's, upstream's; dbt_project/macros/use_cases.sql)."""
    return [
        r[0].removesuffix("_score")
        for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'main' "
            "and table_name = 'iqb_scores_by_country' order by ordinal_position"
        ).fetchall()
        if r[0].endswith("_score") and r[0] != "iqb_score"
    ]


def _summary(
    con: duckdb.DuckDBPyConnection, path: Path, use_case_order: list[str]
) -> dict[str, Any]:
    score_pct = _score_percentile(con)
    percentiles = sorted({50, 95, score_pct})
    metric_cols = _metric_columns(percentiles)
    score_cols = ["iqb_score", *(f"{u}_score" for u in use_case_order)]
    cols = [
        "period",
        "country_code",
        "country_name",
        "meets_min_samples",
        "download_sample_count",
        "upload_sample_count",
        *score_cols,
        *metric_cols,
    ]
    sources = period_sources(con)
    index = {s.start: i for i, s in enumerate(sources)}
    select = ", ".join(
        [f"q.{c}" for c in cols[1:6]]
        + [f"s.{c}" for c in score_cols]
        + [f"q.{c}" for c in metric_cols]
    )
    rows = con.execute(
        f"select q.period_start, {select} from quality_by_country as q "
        "left join iqb_scores_by_country as s using (period_start, period_end, country_code) "
        "order by q.period_start, q.country_code"
    ).fetchall()
    country_rows = [
        [
            index[r[0]],
            *(
                _num(v, 4 if c.endswith("_score") else 3)
                for c, v in zip(cols[1:], r[1:], strict=True)
            ),
        ]
        for r in rows
    ]
    min_samples = con.execute(
        "select period_start, max(min_sample_count) from quality_by_country group by all"
    ).fetchall()
    min_by_period = {s: n for s, n in min_samples}
    periods = []
    for s in sources:
        in_period = [r for r in country_rows if r[0] == index[s.start]]
        periods.append(
            {
                "start": s.start.isoformat(),
                "end": s.end.isoformat(),
                "label": _period_label(s.start, s.end),
                "synthetic": s.synthetic,
                "evidence": s.evidence,
                "countries": len(in_period),
                "scored": sum(r[6] is not None for r in in_period),
                "min_sample_count": min_by_period.get(s.start),
            }
        )
    loaded_at = con.execute("select max(loaded_at) from quality_by_country").fetchone()[0]
    requirements = [
        dict(zip(("use_case", "requirement", "weight", "threshold"), r, strict=True))
        for r in con.execute(
            "select use_case, requirement, weight, threshold from iqb_requirements order by all"
        ).fetchall()
    ]
    use_cases = sorted(
        (
            dict(zip(("use_case", "weight"), r, strict=True))
            for r in con.execute(
                "select use_case, weight from iqb_use_cases order by all"
            ).fetchall()
        ),
        key=lambda u: (
            use_case_order.index(u["use_case"])
            if u["use_case"] in use_case_order
            else len(use_case_order),
            u["use_case"],
        ),
    )  # upstream's order
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "database_built_at": _num(loaded_at),
        "database": str(path),
        "commit": _commit(),
        "score_percentile": score_pct,
        "percentiles": percentiles,
        "periods": periods,
        "requirements": requirements,
        "use_cases": use_cases,
        "relations": [*MARTS, *SCORES],
        "countries": {"cols": cols, "rows": country_rows},
        "drill_files": {},
    }


def _drill(
    con: duckdb.DuckDBPyConnection,
    start: str,
    limit: int,
    percentiles: list[int],
    use_cases: list[str],
) -> dict[str, Any]:
    """Per country, the ``limit`` places of each drill level with the most tests."""
    metric_cols = _metric_columns(percentiles)
    out: dict[str, Any] = {"limit": limit, "levels": {}}
    for level, label, code in DRILL_LEVELS:
        keys = PLACE_KEYS[level]
        cols = [
            "country_code",
            "label",
            "code",
            "meets_min_samples",
            "download_sample_count",
            "upload_sample_count",
            "iqb_score",
            *(f"{u}_score" for u in use_cases),
            *metric_cols,
        ]
        select = ", ".join(
            [
                "q.country_code",
                f"({label})",
                f"({code})",
                "q.meets_min_samples",
                "q.download_sample_count",
                "q.upload_sample_count",
                "s.iqb_score",
                *(f"s.{u}_score" for u in use_cases),
                *(f"q.{c}" for c in metric_cols),
            ]
        )
        rows = con.execute(
            f"""
            with ranked as (
                select {select},
                    row_number() over (
                        partition by q.country_code
                        order by coalesce(q.download_sample_count, 0)
                                 + coalesce(q.upload_sample_count, 0) desc,
                                 {label}
                    ) as rank_in_country,
                    count(*) over (partition by q.country_code) as places_in_country
                from quality_by_{level} as q
                left join iqb_scores_by_{level} as s
                    using (period_start, period_end, {", ".join(keys)})
                where q.period_start = ?
            )
            select * exclude (rank_in_country) from ranked
            where rank_in_country <= ?
            order by 1, rank_in_country
            """,
            [date.fromisoformat(start), limit],
        ).fetchall()
        totals = {r[0]: r[-1] for r in rows}
        out["levels"][level] = {
            "cols": cols,
            "rows": [
                [
                    _num(v, 4 if c.endswith("_score") else 3)
                    for c, v in zip(cols, r[:-1], strict=True)
                ]
                for r in rows
            ],
            "totals": totals,
        }
    return out


def _period_label(start: date, end: date) -> str:
    if is_one_month(start, end):
        return f"{start:%Y-%m}"
    return f"{start:%Y-%m-%d}..{end:%Y-%m-%d}"


def _commit() -> str:
    """The checkout's commit (with "+ local changes" when dirty), or "unknown"."""
    checkout = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        dirty = subprocess.run(
            ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.strip() + (" + local changes" if dirty.strip() else "")


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
