"""What the HTML report shows, read from the database: the payloads of its data files.

``read_summary`` is ``data/summary.js`` (countries in every period, the use
cases and their requirements, provenance); ``read_drill`` is one
``data/drill-<period>.js`` (the places of each country with the most tests).
Reads only the relations ``quality_by_<level>``, ``iqb_scores_by_<level>`` and
the seeds, by name. Writing the folder: ``build.py``.
"""

from __future__ import annotations

import base64
import math
import struct
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from extract import defaults
from extract.months import is_one_month
from extract.results.html.provenance import period_sources

METRICS = ("download", "upload", "latency", "loss")
# The percentiles of the quality marts (dbt_project/macros/percentiles.sql): the page
# scores at any of them, so it carries them all.
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
# Drill-down levels and how a row is named: (level, label SQL, code SQL); q = the mart.
# Casts: the page receives every name and code as text, whatever the column's type.
DRILL_LEVELS = (
    ("subdivision1", "q.subdivision1_name::varchar", "q.subdivision1_iso_code::varchar"),
    (
        "city",
        "q.city::varchar || ', ' || q.subdivision1_name::varchar",
        "q.subdivision1_iso_code::varchar",
    ),
    ("country_asn", "q.as_name::varchar", "'AS' || q.asn::varchar"),
)
# The flags the page's calculator needs (the score macro's NULL rules) and shows.
FLAGS = ("is_known_country", "meets_min_samples", "has_invalid_values")
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


def _num(value: Any) -> Any:
    """A value as the data file holds it: floats exact (JSON's shortest form that reads
    back to the same double), because the page scores them against thresholds and a
    rounded 25.0066 would fail ``> 25`` where the database passes it. NaN and infinities
    (rows flagged has_invalid_values, never scored) become null."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return value
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _table(cols: list[str], rows: list[tuple[Any, ...]], n_values: int) -> dict[str, Any]:
    """Rows as a data file holds them: the first columns as JSON arrays, the last
    ``n_values`` (the percentile values) packed as little-endian float64, base64, row
    by row, NaN for NULL: exact, like JSON's shortest form, in about 60% of its bytes
    (10.7 characters a value instead of 17 to 19), and quick to read back."""
    head = len(cols) - n_values
    values = [v for r in rows for v in r[head:]]
    packed = struct.pack(f"<{len(values)}d", *(math.nan if v is None else float(v) for v in values))
    return {
        "cols": cols[:head],
        "rows": [[_num(v) for v in r[:head]] for r in rows],
        "values": {"cols": cols[head:], "f64": base64.b64encode(packed).decode("ascii")},
    }


def _metric_columns(percentiles: list[int] | tuple[int, ...] = PERCENTILES) -> list[str]:
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
    """Every country row of every period with its values at all nine percentiles and the
    flags the score needs: the page computes the scores itself (at any percentile, with
    any thresholds and weights) exactly as the score macro does."""
    score_pct = _score_percentile(con)
    metric_cols = _metric_columns()
    cols = [
        "period",
        "country_code",
        "country_name",
        *FLAGS,
        "download_sample_count",
        "upload_sample_count",
        *metric_cols,
    ]
    sources = period_sources(con, tuple(PLACE_KEYS))
    index = {(s.start, s.end): i for i, s in enumerate(sources)}
    select = ", ".join(
        [
            "q.country_code::varchar",
            "q.country_name::varchar",
            *(f"q.{c}" for c in cols[3:]),
        ]
    )
    rows = con.execute(
        f"select q.period_start, q.period_end, {select} from quality_by_country as q "
        "order by q.period_start, q.period_end, q.country_code"
    ).fetchall()
    country_rows = [(index[(r[0], r[1])], *r[2:]) for r in rows]
    per_period = {
        (start, end): (countries, others, scored, n)
        for start, end, countries, others, scored, n in con.execute(
            "select q.period_start, q.period_end, "
            "count(*) filter (where q.is_known_country), "
            "count(*) filter (where not q.is_known_country), "
            "count(s.iqb_score) filter (where q.is_known_country), "
            "max(q.min_sample_count) from quality_by_country as q "
            "left join iqb_scores_by_country as s "
            "using (period_start, period_end, country_code) group by all"
        ).fetchall()
    }
    periods = []
    for s in sources:
        countries, others, scored, min_samples = per_period[(s.start, s.end)]
        periods.append(
            {
                "id": period_id(s.start, s.end),
                "start": s.start.isoformat(),
                "end": s.end.isoformat(),
                "label": _period_label(s.start, s.end),
                "synthetic": s.synthetic,
                "evidence": s.evidence,
                # codes outside the ISO seed (and XK) are rows of the data, not countries
                "countries": countries,
                "not_countries": others,
                "scored": scored,
                "min_sample_count": min_samples,
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
        "percentiles": list(PERCENTILES),
        "periods": periods,
        "requirements": requirements,
        "use_cases": use_cases,
        "relations": list(RELATIONS),
        "countries": _table(cols, country_rows, len(metric_cols)),
        "drill_files": {},
    }


def read_drill(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    limit: int,
) -> dict[str, Any]:
    """Per country, the ``limit`` places of each drill level with the most tests, with
    the values at all nine percentiles and the score's flags (the page scores them)."""
    metric_cols = _metric_columns()
    out: dict[str, Any] = {"limit": limit, "levels": {}}
    for level, label, code in DRILL_LEVELS:
        cols = [
            "country_code",
            "label",
            "code",
            *FLAGS,
            "download_sample_count",
            "upload_sample_count",
            *metric_cols,
        ]
        select = ", ".join(
            [
                "q.country_code::varchar",
                f"({label})",
                f"({code})",
                *(f"q.{c}" for c in cols[3:]),
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
                                 {label}, {code}
                    ) as rank_in_country,
                    count(*) over (partition by q.country_code) as places_in_country
                from quality_by_{level} as q
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
            **_table(cols, [r[:-1] for r in rows], len(metric_cols)),
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
    checkout = Path(__file__).resolve().parents[3]
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
