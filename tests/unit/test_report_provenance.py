"""Synthetic or real, per period: what the build wrote into the marts, shown as it is."""

from __future__ import annotations

from datetime import date

import duckdb

from extract.results.html.provenance import period_sources
from extract.results.report import LEVELS

SEP, OCT, NOV = date(2024, 9, 1), date(2024, 10, 1), date(2024, 11, 1)


def marts() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for level in LEVELS:
        con.execute(
            f"create table quality_by_{level} (period_start date, period_end date, "
            "country_code varchar, is_synthetic boolean, source_kind varchar)"
        )
    return con


def test_each_period_says_what_its_entries_were() -> None:
    con = marts()
    con.execute(
        "insert into quality_by_country values "
        "(?, ?, 'ZA', true, 'synthetic'), (?, ?, 'AR', true, 'synthetic'), "
        "(?, ?, 'ZA', false, 'upstream')",
        [SEP, OCT, SEP, OCT, OCT, NOV],
    )
    got = period_sources(con, LEVELS)
    assert [(s.start, s.synthetic) for s in got] == [(SEP, True), (OCT, False)]
    assert got[0].evidence == "cache entries' source: synthetic (is_synthetic of the marts)"
    assert got[1].evidence == "cache entries' source: upstream (is_synthetic of the marts)"


def test_a_period_with_real_countries_over_synthetic_cities_is_synthetic() -> None:
    """Real country entries pulled over the demo: its cities are still synthetic."""
    con = marts()
    con.execute("insert into quality_by_country values (?, ?, 'ZA', false, 'upstream')", [OCT, NOV])
    con.execute("insert into quality_by_city values (?, ?, 'ZA', true, 'synthetic')", [OCT, NOV])
    con.execute("insert into quality_by_city values (?, ?, 'ZA', true, 'synthetic')", [SEP, OCT])
    (got,) = period_sources(con, LEVELS)  # September has no country row: not a period of the report
    assert (got.start, got.synthetic) == (OCT, True)
    assert got.evidence == "cache entries' source: synthetic,upstream (is_synthetic of the marts)"
