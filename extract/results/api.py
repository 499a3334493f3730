"""The results as pandas DataFrames, for notebooks and scripts.

One import::

    from extract.results import api

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
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from extract import defaults
from extract.datasets import PERCENTILES
from extract.results import scoring
from extract.results.report import connected_file, database_state
from extract.results.select import (
    LEVELS,
    PLACE_COLUMNS,
    ApiError,
    SyntheticDataWarning,
    _level,
    _select,
    artifacts_root,
    connect,
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
    percentile the scores compared with the thresholds (dbt var ``iqb_percentile``,
    default ``extract.defaults.IQB_PERCENTILE``). A NULL score means too few tests
    or a missing value, not zero.

    Without a rebuild: ``percentile=`` (1, 5, 10, 25, 50, 75, 90, 95, 99) reads
    the database's scores at that percentile (``iqb_scores_all_percentiles_by_<level>``,
    equal to a build at it); ``config=`` scores the quality rows with upstream
    m-lab/iqb's config (its nested dict, or a YAML or JSON file of that shape; start
    from :func:`config`) as upstream's calculator would, at ``percentile`` or the
    build's. The columns are the score view's at that percentile: its
    ``download_pX`` .. ``loss_pX`` when X is not the default, and ``<use case>_score`` per
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

    def rows_of(relation: str, **more: Any) -> pd.DataFrame:
        return _select(
            relation,
            lvl,
            country,
            period,
            place,
            asn,
            artifacts,
            unknown_codes=unknown_codes,
            **more,
        )

    if config is None and percentile is None:
        return rows_of(f"iqb_scores_by_{lvl}")
    if config is None:
        assert percentile is not None
        rows = rows_of(
            f"iqb_scores_all_percentiles_by_{lvl}",
            extra=[(f"percentile {percentile}", "score_percentile = ?", [percentile])],
        )
        return _at_percentile(rows, percentile)
    try:
        parsed = scoring.parse_config(config)
    except scoring.ConfigError as exc:
        raise ApiError(str(exc)) from None
    if percentile is None:
        with connect(artifacts) as con:
            percentile = build_percentile(con)
    return _scored(rows_of(f"quality_by_{lvl}"), lvl, parsed, percentile)


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
    when the build recorded it, else the score view's own column; the default when empty)."""
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
    return defaults.IQB_PERCENTILE


def _at_percentile(rows: pd.DataFrame, percentile: int) -> pd.DataFrame:
    """All-percentiles rows in the score view's columns at ``percentile``."""
    px = [f"{metric}_px" for metric in ("download", "upload", "latency", "loss")]
    if percentile == defaults.IQB_PERCENTILE:
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
        *[f"{m}_p{defaults.IQB_PERCENTILE}" for m in metrics],
        *([f"{m}_p{percentile}" for m in metrics] if percentile != defaults.IQB_PERCENTILE else []),
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
