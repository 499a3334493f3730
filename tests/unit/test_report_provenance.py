"""Synthetic or real, per period: the marts' is_synthetic column, stats.json, or the names."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb

from extract.report_html.provenance import period_sources

SEP, OCT, NOV = date(2024, 9, 1), date(2024, 10, 1), date(2024, 11, 1)


def marts(with_flag: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    flag = ", is_synthetic boolean" if with_flag else ""
    con.execute(f"create table quality_by_country (period_start date, period_end date, "
                f"country_code varchar{flag})")
    con.execute("create table quality_by_country_asn (period_start date, period_end date, "
                "asn bigint, as_name varchar)")
    con.execute("create table quality_by_subdivision1 (period_start date, period_end date, "
                "subdivision1_name varchar)")
    return con


def test_the_marts_column_wins(tmp_path: Path) -> None:
    con = marts(with_flag=True)
    con.execute("insert into quality_by_country values (?, ?, 'ZA', true), (?, ?, 'ZA', false)",
                [SEP, OCT, OCT, NOV])
    got = period_sources(con, tmp_path)
    assert [(s.start, s.synthetic) for s in got] == [(SEP, True), (OCT, False)]
    assert all(s.evidence == "is_synthetic column of the marts" for s in got)


def test_without_the_column_the_names_and_stats_tell(tmp_path: Path) -> None:
    con = marts()
    con.execute("insert into quality_by_country values (?, ?, 'ZA'), (?, ?, 'ZA'), "
                "('2024-11-01', '2024-12-01', 'ZA')", [SEP, OCT, OCT, NOV])
    # September: the synthetic sample's names; October: real names; November: stats.json
    con.execute("insert into quality_by_country_asn values (?, ?, 4200000001, "
                "'SYNTHETIC-AS4200000001'), (?, ?, 37457, 'Telkom')", [SEP, OCT, OCT, NOV])
    con.execute("insert into quality_by_subdivision1 values (?, ?, 'Synthetic Region 1 of ZA')",
                [SEP, OCT])
    stats = (tmp_path / "cache/v1/20241101T000000Z/20241201T000000Z/downloads_by_country")
    stats.mkdir(parents=True)
    (stats / "stats.json").write_text(json.dumps({"source": {"kind": "synthetic"}}))
    got = period_sources(con, tmp_path)
    assert [(s.start, s.synthetic) for s in got] == [(SEP, True), (OCT, False),
                                                     (date(2024, 11, 1), True)]
    assert got[0].evidence.startswith("2 places or networks named by the synthetic sample")
    assert got[1].evidence == "no synthetic place or network names"
    assert got[2].evidence == "stats.json source.kind = synthetic"
