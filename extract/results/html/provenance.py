"""Is a period synthetic or real? The build says so, per period, in the marts.

The quality marts carry ``is_synthetic`` and ``source_kind`` (the kinds of the
cache entries behind the period, from their ``stats.json``: docs/dbt.md); the
report shows them as they are, so it can never call synthetic data real.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb


@dataclass(frozen=True)
class PeriodSource:
    start: date
    end: date
    synthetic: bool
    evidence: str  # one line a reader can check


def period_sources(con: duckdb.DuckDBPyConnection, levels: Sequence[str]) -> list[PeriodSource]:
    """Every period of ``quality_by_country``, oldest first, with synthetic or real.

    Over the marts of every level the report shows, not the country one alone:
    real country entries pulled over a synthetic demo leave its regions, cities
    and networks synthetic, and the drill-down shows them under the period's label."""
    marts = " union all ".join(
        f"select period_start, period_end, is_synthetic, source_kind from quality_by_{level}"
        for level in levels
    )
    rows = con.execute(
        "select period_start, period_end, bool_or(is_synthetic), "
        "string_agg(distinct source_kind, ',' order by source_kind) "
        f"from ({marts}) semi join quality_by_country using (period_start, period_end) "
        "group by all order by 1, 2"
    ).fetchall()
    return [
        PeriodSource(
            start,
            end,
            bool(synthetic),
            f"cache entries' source: {kinds} (is_synthetic of the marts)",
        )
        for start, end, synthetic, kinds in rows
    ]
