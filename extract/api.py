"""The results as pandas DataFrames, for notebooks and scripts.

One import::

    from extract import api

    api.scores("country", period="latest")                # the map's data
    api.trend("ZA")                                       # one country, every period
    api.quality("country_asn", country="ZA", period="2024-10")
    api.scores("city", country="BR", place="Sao Paulo")   # a subdivision, city or AS name
    api.scores("country", percentile=50)                  # at another percentile, no rebuild
    api.scores("country", config="my_config.yaml")        # upstream's config, your thresholds
    api.config()                                          # the database's own config, to edit
    api.sql("select count(*) from quality_by_city")       # anything else, in SQL

Every call opens ``<artifacts>/iqb.duckdb`` read-only (so it never blocks
another reader, and never changes the file) and reads the relations
``quality_by_<level>`` and ``iqb_scores_by_<level>`` by name. The artifacts
root is found as the CLI finds it: the ``artifacts=`` argument, else
``$IQB_ARTIFACTS``, else ``./artifacts``; from a sub-folder of the workspace
(such as ``notebooks/``) the nearest ``artifacts/`` folder above the working
directory, then the one of the checkout this package lives in. A folder
without a database is an error (ApiError), never a fall back to another one.

Percentiles follow the polarity convention: ``download_p95`` is what the
best-served 5% get (the high end); ``latency_p95`` and ``loss_p95`` are what
the best-served 5% get too, which for latency and loss is the *low* end.
Never average percentiles across places or periods.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from extract import scoring
from extract.datasets import PERCENTILES
from extract.paths import ArtifactPaths, find_artifacts
from extract.report import (
    LEVELS,
    ReportError,
    connected_file,
    database_state,
    open_database,
)

__all__ = [
    "LEVELS",
    "ApiError",
    "SyntheticDataWarning",
    "artifacts_root",
    "config",
    "connect",
    "periods",
    "quality",
    "scores",
    "sql",
    "state",
    "trend",
]

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


def state(artifacts: str | Path | None = None) -> dict[str, Any]:
    """Which state the other functions read: ``path`` (``iqb.duckdb``, or the
    ``read_only/`` snapshot a pull brought when no build was run here),
    ``snapshot``, ``state_id`` (when the pull recorded it), ``build_id``,
    ``built_at``, ``git_commit``, ``origin`` (the manifest it was pulled from),
    and ``describe``, all of it in one line."""
    with connect(artifacts) as con:
        found = database_state(con, connected_file(con))
    return {**dataclasses.asdict(found), "describe": found.describe()}


def sql(
    query: str, params: list[Any] | None = None, artifacts: str | Path | None = None
) -> pd.DataFrame:
    """Any read-only SQL over the database, as a DataFrame."""
    with connect(artifacts) as con:
        return con.execute(query, params or []).df()


def periods(artifacts: str | Path | None = None) -> pd.DataFrame:
    """Every period in the database: start, end, how many countries it has and how many
    have a score, how many rows carry a code that is not a country (``other_codes``:
    kept and flagged, never counted as countries), and whether any of its rows, at any
    level, come from synthetic data (``iqb sample``)."""
    marts = " union all ".join(
        f"select period_start, period_end, is_synthetic from quality_by_{level}"
        for level in PLACE_COLUMNS
    )
    return sql(
        "with synthetic as (select period_start, period_end, bool_or(is_synthetic) as "
        f"is_synthetic from ({marts}) group by all) "
        "select period_start, period_end, count(*) filter (where is_known_country) as countries, "
        "count(iqb_score) as countries_scored, "
        "count(*) filter (where not is_known_country) as other_codes, "
        "any_value(synthetic.is_synthetic) as is_synthetic "
        "from iqb_scores_by_country left join synthetic using (period_start, period_end) "
        "group by all order by period_start, period_end",
        artifacts=artifacts,
    )


def quality(
    level: str = "country",
    *,
    country: str | None = None,
    period: str | date | None = None,
    place: str | int | None = None,
    asn: int | str | None = None,
    unknown_codes: bool = False,
    artifacts: str | Path | None = None,
) -> pd.DataFrame:
    """Rows of ``quality_by_<level>``: counts, ``meets_min_samples`` and the 36 percentiles.

    ``country``: ISO alpha-2 code. ``period``: ``"2024-10"``, ``"2024-10-01"``,
    a date, ``"latest"``, or ``"2024-10-01..2024-10-16"`` when two periods
    share a start (then a start alone is refused, naming them). ``place``: a
    subdivision (ISO code or name), a city, or an AS name, whichever the level
    has, without regard to case or accents (an unknown one is refused with the nearest
    names that exist). ``asn``: an AS number. Rows whose code is not a country (not in the ISO 3166
    seed, XK aside: ``is_known_country`` false) are left out unless ``unknown_codes``.
    """
    return _select(
        f"quality_by_{_level(level)}",
        level,
        country,
        period,
        place,
        asn,
        artifacts,
        unknown_codes=unknown_codes,
    )


def scores(
    level: str = "country",
    *,
    country: str | None = None,
    period: str | date | None = None,
    place: str | int | None = None,
    asn: int | str | None = None,
    percentile: int | None = None,
    config: Mapping[str, Any] | str | Path | None = None,
    unknown_codes: bool = False,
    artifacts: str | Path | None = None,
) -> pd.DataFrame:
    """Rows of ``iqb_scores_by_<level>``: the six use-case scores and ``iqb_score``.

    Same filters as :func:`quality`. ``score_percentile`` says which
    percentile the scores compared with the thresholds (dbt var
    ``iqb_percentile``, default 95). A NULL score means too few tests or a
    missing value, not zero.

    Without a rebuild: ``percentile=`` (1, 5, 10, 25, 50, 75, 90, 95, 99) reads
    the database's scores at that percentile (``iqb_scores_all_percentiles_by_<level>``,
    equal to a build at it); ``config=`` scores the quality rows with upstream
    m-lab/iqb's config (its nested dict, or a YAML or JSON file of that shape; start
    from :func:`config`) as upstream's calculator would, at ``percentile`` or the
    build's. The columns are the score view's at that percentile: its
    ``download_pX`` .. ``loss_pX`` when X is not 95, and ``<use case>_score`` per
    use case of the config.
    """
    lvl = _level(level)
    if percentile is not None and (
        isinstance(percentile, bool)
        or not isinstance(percentile, int)
        or percentile not in PERCENTILES
    ):
        raise ApiError(
            f"percentile {percentile!r}: use one of {', '.join(map(str, PERCENTILES))} "
            "(the percentiles of the marts)"
        )
    if config is None and percentile is None:
        return _select(
            f"iqb_scores_by_{lvl}",
            lvl,
            country,
            period,
            place,
            asn,
            artifacts,
            unknown_codes=unknown_codes,
        )
    if config is None:
        assert percentile is not None
        rows = _select(
            f"iqb_scores_all_percentiles_by_{lvl}",
            lvl,
            country,
            period,
            place,
            asn,
            artifacts,
            extra=[(f"percentile {percentile}", "score_percentile = ?", [percentile])],
            unknown_codes=unknown_codes,
        )
        return _at_percentile(rows, percentile)
    try:
        parsed = scoring.parse_config(config)
    except scoring.ConfigError as exc:
        raise ApiError(str(exc)) from None
    if percentile is None:
        with connect(artifacts) as con:
            percentile = build_percentile(con)
    quality_rows = _select(
        f"quality_by_{lvl}",
        lvl,
        country,
        period,
        place,
        asn,
        artifacts,
        unknown_codes=unknown_codes,
    )
    return _scored(quality_rows, lvl, parsed, percentile)


def config(artifacts: str | Path | None = None) -> dict[str, Any]:
    """The database's own thresholds and weights (its seeds ``iqb_requirements`` and
    ``iqb_use_cases``) as upstream m-lab/iqb's config dict: edit a copy and pass it
    to :func:`scores` as ``config=``. Unchanged, it gives the database's scores."""
    with connect(artifacts) as con:
        try:
            requirements = con.execute(
                "select use_case, requirement, weight, threshold from iqb_requirements"
            ).fetchall()
            use_cases = con.execute("select use_case, weight from iqb_use_cases").fetchall()
        except duckdb.CatalogException:
            raise ApiError(
                "the database has no seeds iqb_requirements / iqb_use_cases: run `dbt build`"
            ) from None
    return scoring.config_from_seeds(requirements, use_cases)


def build_percentile(con: duckdb.DuckDBPyConnection) -> int:
    """The percentile the database's score views were built at (``main.iqb_build``
    when the build recorded it, else the score view's own column; 95 when empty)."""
    for query in (
        "select iqb_percentile from iqb_build",
        "select score_percentile from iqb_scores_by_country limit 1",
    ):
        try:
            row = con.execute(query).fetchone()
        except duckdb.CatalogException:
            continue
        if row is not None and row[0] is not None:
            return int(row[0])
    return 95


def _at_percentile(rows: pd.DataFrame, percentile: int) -> pd.DataFrame:
    """All-percentiles rows in the score view's columns at ``percentile``."""
    px = [f"{metric}_px" for metric in ("download", "upload", "latency", "loss")]
    if percentile == 95:
        return rows.drop(columns=px)
    return rows.rename(columns={c: c.replace("_px", f"_p{percentile}") for c in px})


def _scored(
    rows: pd.DataFrame, level: str, parsed: scoring.Config, percentile: int
) -> pd.DataFrame:
    """Quality rows scored with a config, in the columns of the score view."""
    metrics = ("download", "upload", "latency", "loss")
    columns = [
        "period_start",
        "period_end",
        "country_code",
        "country_name",
        *PLACE_COLUMNS[level],
        "download_sample_count",
        "upload_sample_count",
        "meets_min_samples",
        "is_known_country",
        "has_invalid_values",
        "source_kind",
        "is_synthetic",
        *[f"{m}_p95" for m in metrics],
        *([f"{m}_p{percentile}" for m in metrics] if percentile != 95 else []),
    ]
    out = rows[columns].copy()
    out["score_percentile"] = np.int32(percentile)
    scored = scoring.score(rows, parsed, percentile)
    return pd.concat([out, scored], axis=1)


def trend(
    country: str,
    level: str = "country",
    *,
    place: str | int | None = None,
    asn: int | str | None = None,
    unknown_codes: bool = False,
    artifacts: str | Path | None = None,
) -> pd.DataFrame:
    """One place across every period: its quality row with its scores, oldest first."""
    lvl = _level(level)
    keys = [
        "period_start",
        "period_end",
        "country_code",
        *[c for c in PLACE_COLUMNS[lvl] if c != "as_name"],
    ]
    q = quality(
        lvl, country=country, place=place, asn=asn, unknown_codes=unknown_codes, artifacts=artifacts
    )
    s = scores(
        lvl, country=country, place=place, asn=asn, unknown_codes=unknown_codes, artifacts=artifacts
    )
    score_cols = [c for c in s.columns if c.endswith("_score") or c == "score_percentile"]
    return q.merge(s[keys + score_cols], on=keys, how="left").sort_values(
        "period_start", ignore_index=True
    )


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
