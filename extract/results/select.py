"""How ``extract.results.api`` selects rows: its connection, filters, and the errors that name
what matched nothing (a misspelt place gets the nearest names that exist).

Apart from ``extract/results/api.py`` so that each stays short: this is the machinery,
``api.py`` the functions a notebook calls (which re-exports what it needs).
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from extract.paths import ArtifactPaths, find_artifacts
from extract.results.report import LEVELS, ReportError, open_database

# The place columns of each level, after country_code (the marts' keys).
PLACE_COLUMNS: dict[str, tuple[str, ...]] = {
    "country": (),
    "country_asn": ("asn", "as_name"),
    "subdivision1": ("subdivision1_iso_code", "subdivision1_name"),
    "subdivision1_asn": ("subdivision1_iso_code", "subdivision1_name", "asn", "as_name"),
    "city": ("subdivision1_iso_code", "subdivision1_name", "city"),
    "city_asn": ("subdivision1_iso_code", "subdivision1_name", "city", "asn", "as_name"),
}
_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


class ApiError(ValueError):
    """A bad argument or a missing database; the message says what to do."""


def artifacts_root(artifacts: str | Path | None = None) -> Path:
    """The artifacts root the other functions read (see the module docstring)."""
    return find_artifacts(artifacts)


@contextmanager
def connect(artifacts: str | Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only DuckDB connection to the database, closed on exit."""
    path = ArtifactPaths(artifacts_root(artifacts)).database
    try:
        with open_database(path) as con:
            yield con
    except ReportError as exc:
        raise ApiError(str(exc)) from None


def _level(level: str) -> str:
    if level not in PLACE_COLUMNS:
        raise ApiError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    return level


def _period(
    con: duckdb.DuckDBPyConnection, relation: str, period: str | date
) -> tuple[date | None, date | None]:
    """(period_start, period_end) that ``period`` names. A start alone must name one
    period: a matrix may hold two with the same start (a month and its first half),
    whose rows would otherwise come back mixed."""
    if isinstance(period, str) and ".." in period:
        first, last = (_day(p, period) for p in period.split("..", 1))
        return first, last
    if period == "latest":
        latest = con.execute(f"select max(period_start) from {relation}").fetchone()
        assert latest is not None  # an aggregate without GROUP BY returns one row
        start = latest[0]
    else:
        start = period if isinstance(period, date) else _day(period, period)
    ends = [
        e
        for (e,) in con.execute(
            f"select distinct period_end from {relation} where period_start = ? order by 1",
            [start],
        ).fetchall()
    ]
    if len(ends) > 1:
        named = ", ".join(f"'{start}..{e}'" for e in ends)
        raise ApiError(
            f"period {period!r} starts {len(ends)} periods: name one, e.g. period={named}"
        )
    return start, (ends[0] if ends else None)


def _asn(asn: int | str) -> int:
    """An AS number, also as upstream and whois write it: ``"AS15169"``."""
    text = str(asn).strip().upper().removeprefix("AS")
    if not text.isdigit():
        raise ApiError(f"asn {asn!r} is not an AS number (e.g. 15169 or 'AS15169')")
    return int(text)


def _day(text: str, period: str) -> date:
    m = _PERIOD_RE.match(text.strip())
    if not m:
        raise ApiError(
            f"period {period!r}: use 'YYYY-MM', 'YYYY-MM-DD', 'START..END', a date or 'latest'"
        )
    try:
        return date(int(m[1]), int(m[2]), int(m[3] or 1))
    except ValueError:
        raise ApiError(f"period {period!r} is not a date") from None


class SyntheticDataWarning(UserWarning):
    """Rows made by ``iqb sample``: shown, so that a notebook never passes them off as real."""


# A filter of _select: what the user asked for (for messages), its SQL, its parameters.
_Filter = tuple[str, str, list[Any]]


def _select(
    relation: str,
    level: str,
    country: str | None,
    period: str | date | None,
    place: str | int | None,
    asn: int | str | None,
    artifacts: str | Path | None,
    extra: list[_Filter] | None = None,
    unknown_codes: bool = False,
) -> pd.DataFrame:
    cols = PLACE_COLUMNS[level]
    filters: list[_Filter] = list(extra or [])
    # Codes that are not countries are kept and flagged in the database, but a caller
    # asking for countries must not get them: left out unless asked for.
    base = "true" if unknown_codes else "is_known_country"
    with connect(artifacts) as con:
        if country is not None:
            filters.append((f"country {country!r}", "country_code = ?", [country.upper()]))
        if period is not None:
            first, last = _period(con, relation, period)
            sql_period = "period_start = ?" + (" and period_end = ?" if last else "")
            filters.append((f"period {period!r}", sql_period, [first, last] if last else [first]))
        if asn is not None:
            if "asn" not in cols:
                raise ApiError(f"level {level!r} has no networks: use an *_asn level for asn=")
            filters.append((f"asn {asn!r}", "asn = ?", [_asn(asn)]))
        if place is not None:
            names = [c for c in cols if c != "asn"]
            if not names:
                raise ApiError(
                    f"level {level!r} has no places below the country: "
                    "use country= (or another level)"
                )
            condition = "(" + " or ".join(f"{_folded(c)} = {_folded('?')}" for c in names) + ")"
            filters.append((f"place {place!r}", condition, [str(place)] * len(names)))
        where = " and ".join([base, *(condition for _, condition, _ in filters)])
        params = [p for _, _, values in filters for p in values]
        order = ", ".join(["period_start", "country_code", *cols])
        try:
            rows = con.execute(
                f"select * from {relation} where {where} order by {order}", params
            ).df()
        except duckdb.CatalogException:
            raise ApiError(
                f"{relation} is not in the database: run `dbt build` "
                "(it builds every mart and score view)"
            ) from None
        if rows.empty:
            _explain_empty(con, relation, filters, base, [c for c in cols if c != "asn"])
    if "is_synthetic" in rows.columns and rows.is_synthetic.any():
        warnings.warn(
            f"{int(rows.is_synthetic.sum())} of {len(rows)} rows of {relation} come from "
            "synthetic data (`iqb sample`), not from M-Lab measurements (column is_synthetic)",
            SyntheticDataWarning,
            stacklevel=3,
        )
    return rows


def _explain_empty(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    filters: list[_Filter],
    base: str,
    names: list[str],
) -> None:
    """No row matched: name a filter that matches no row of ``relation`` on its own (a
    misspelt country or place, a period not built), which an empty DataFrame would
    hide; for a place, the nearest names that exist. When each matches alone, the
    empty answer is the true one: it is returned."""
    for asked, condition, params in filters:
        if asked.startswith("country") and base != "true":
            flagged = con.execute(
                f"select 1 from {relation} where {condition} and not is_known_country limit 1",
                params,
            ).fetchone()
            if flagged:
                raise ApiError(
                    f"{asked} is not a country (not in the ISO 3166 seed): its rows are kept, "
                    "flagged is_known_country = false and not scored; pass unknown_codes=True "
                    "to read them"
                )
        if con.execute(
            f"select 1 from {relation} where {base} and {condition} limit 1", params
        ).fetchone():
            continue
        message = f"no row of {relation} has {asked}"
        if asked.startswith("period"):
            built = con.execute(
                f"select distinct period_start, period_end from {relation} order by all"
            ).fetchall()
            message += "; its periods: " + ", ".join(f"{s}..{e}" for s, e in built)
        elif asked.startswith("country"):
            message += " (an ISO 3166 alpha-2 code, e.g. 'GB', not 'UK' or 'GBR')"
        elif asked.startswith("place"):
            message += _nearest_places(con, relation, filters, base, names, params[0])
        raise ApiError(message)


def _nearest_places(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    filters: list[_Filter],
    base: str,
    names: list[str],
    place: str,
) -> str:
    """ "; nearest names: ..." from the place names of ``relation`` (in the country asked
    for, when one was), by difflib's similarity, ignoring case; "" when none is close."""
    where = [base]
    params: list[Any] = []
    for asked, condition, values in filters:
        if asked.startswith("country"):
            where.append(condition)
            params += values
    existing = {
        str(name)
        for column in names
        for (name,) in con.execute(
            f"select distinct {column} from {relation} where {' and '.join(where)} "
            f"and {column} is not null",
            params,
        ).fetchall()
    }
    by_lower = {name.lower(): name for name in sorted(existing)}
    close = difflib.get_close_matches(place.lower(), list(by_lower), n=5, cutoff=0.5)
    if not close:
        return f"; no name is close ({len(existing)} places)" if existing else ""
    return "; nearest names: " + ", ".join(repr(by_lower[c]) for c in close)


def _folded(sql: str) -> str:
    """A place name compared without case or accents: "sao paulo" finds "São Paulo"."""
    return f"strip_accents(lower({sql}))"
