"""What the HTML report shows, read from the database: the payloads of its data files.

``read_summary`` is ``data/summary.js`` (countries in every period, the use
cases and their requirements, provenance); ``read_drill`` is one
``data/drill-<period>.js`` (the places of each country with the most tests).
Reads only the relations ``quality_by_<level>``, ``iqb_scores_by_<level>`` and
the seeds, by name. Writing the folder: ``build.py``.
"""

from __future__ import annotations

import math
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from extract import defaults
from extract.months import is_one_month
from extract.report_html.provenance import period_sources

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
# The relations the report reads, by name: the quality mart and score view of each level above.
RELATIONS = tuple(
    f"{kind}_by_{level}" for kind in ("quality", "iqb_scores") for level in PLACE_KEYS
)


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
        return defaults.IQB_PERCENTILE
    row = con.execute("select max(score_percentile) from iqb_scores_by_country").fetchone()
    assert row is not None  # an aggregate without GROUP BY returns one row
    value = row[0]
    return int(value) if value is not None else defaults.IQB_PERCENTILE


def read_use_cases(con: duckdb.DuckDBPyConnection) -> list[str]:
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


def read_summary(
    con: duckdb.DuckDBPyConnection, path: Path, use_case_order: list[str]
) -> dict[str, Any]:
    score_pct = _score_percentile(con)
    percentiles = sorted({50, defaults.IQB_PERCENTILE, score_pct})
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
    sources = period_sources(con, tuple(PLACE_KEYS))
    index = {(s.start, s.end): i for i, s in enumerate(sources)}
    select = ", ".join(
        [f"q.{c}" for c in cols[1:6]]
        + [f"s.{c}" for c in score_cols]
        + [f"q.{c}" for c in metric_cols]
    )
    rows = con.execute(
        f"select q.period_start, q.period_end, {select} from quality_by_country as q "
        "left join iqb_scores_by_country as s using (period_start, period_end, country_code) "
        "order by q.period_start, q.period_end, q.country_code"
    ).fetchall()
    country_rows = [
        [
            index[(r[0], r[1])],
            *(
                _num(v, 4 if c.endswith("_score") else 3)
                for c, v in zip(cols[1:], r[2:], strict=True)
            ),
        ]
        for r in rows
    ]
    min_samples = con.execute(
        "select period_start, period_end, max(min_sample_count) from quality_by_country "
        "group by all"
    ).fetchall()
    min_by_period = {(start, end): n for start, end, n in min_samples}
    periods = []
    for s in sources:
        in_period = [r for r in country_rows if r[0] == index[(s.start, s.end)]]
        periods.append(
            {
                "id": period_id(s.start, s.end),
                "start": s.start.isoformat(),
                "end": s.end.isoformat(),
                "label": _period_label(s.start, s.end),
                "synthetic": s.synthetic,
                "evidence": s.evidence,
                "countries": len(in_period),
                "scored": sum(r[6] is not None for r in in_period),
                "min_sample_count": min_by_period.get((s.start, s.end)),
            }
        )
    row = con.execute("select max(loaded_at) from quality_by_country").fetchone()
    assert row is not None  # an aggregate without GROUP BY returns one row
    loaded_at = row[0]
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
        "database": path.name,  # the report is published: not this machine's folders
        "commit": _commit(),
        "score_percentile": score_pct,
        "percentiles": percentiles,
        "periods": periods,
        "requirements": requirements,
        "use_cases": use_cases,
        "relations": list(RELATIONS),
        "countries": {"cols": cols, "rows": country_rows},
        "drill_files": {},
    }


def read_drill(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
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
                where q.period_start = ? and q.period_end = ?
            )
            select * exclude (rank_in_country) from ranked
            where rank_in_country <= ?
            order by 1, rank_in_country
            """,
            [start, end, limit],
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


def period_id(start: date, end: date) -> str:
    """How the report names a period (its option, its link, its drill-down file): the
    start day for a calendar month, else start_end. Two periods may share a start
    (a month and its first half), so the start alone does not name one."""
    if is_one_month(start, end):
        return start.isoformat()
    return f"{start.isoformat()}_{end.isoformat()}"


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
