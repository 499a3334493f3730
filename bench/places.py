"""The synthetic places and their monthly tables: the generator behind ``bench/synth.py``.

One hierarchy (country -> subdivision -> city -> the ASNs seen in that city),
sized on the real bucket, and each month's table of one dataset drawn over it
(see ``bench/synth.py`` for what the values are and why).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np
import pyarrow as pa

from extract.datasets import DATASETS, DIRECTIONS, PERCENTILES, Dataset, quantile_offset
from extract.extraction.sample.generate import (
    CALIBRATION_MONTH,
    MONTHLY_THROUGHPUT_GROWTH,
    SYNTHETIC_ASN_BASE,
    _knots,
    calibration_table,
)
from extract.months import months_between

# Places at scale 1, tuned so that one month lands on the real sizes (see
# docs/performance.md): ~3,300 subdivisions, ~56,000 cities, ~29,000 country-ASNs,
# ~232,000 city-ASN rows per direction.
SUBDIVISIONS = 3_300
CITIES = 56_000
ASNS = 45_000
# A city sees about ASN_PER_CITY * (its expected monthly tests) ** ASN_EXPONENT ASNs.
ASN_PER_CITY = 0.27
ASN_EXPONENT = 0.42
# How far apart the ASN runs of one subdivision's cities start, relative to their length.
REGIONAL_JITTER = 3.0
# Zipf exponent of the ASNs' shares within a city: a few big ISPs, a long tail of small ones.
ASN_SKEW = 1.8
# Per-place spread around the country's distribution (sigma of a log-normal factor).
THROUGHPUT_SPREAD = 0.35
LATENCY_SPREAD = 0.25
LOSS_SPREAD = 0.4

# Offsets that any labelled percentile reads, ascending (the same nine for all metrics).
OFFSETS: tuple[int, ...] = tuple(
    sorted({quantile_offset(m, p) for m in ("download", "latency") for p in PERCENTILES})
)


@dataclass(frozen=True)
class Period:
    start: date
    end: date


# --- the place hierarchy ----------------------------------------------------------------


@dataclass(frozen=True)
class Universe:
    """All city-ASN pairs that can have tests, with their share of the country's tests."""

    countries: tuple[str, ...]
    country: np.ndarray  # per pair: index into countries
    sub: np.ndarray  # per pair: subdivision number within its country (1-based)
    city: np.ndarray  # per pair: city number within its subdivision (1-based)
    asn: np.ndarray  # per pair: the ASN
    share: np.ndarray  # per pair: expected share of its country's monthly tests


def _zipf(k: int, exponent: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** exponent
    return w / w.sum()


def _country_tests() -> dict[str, dict[str, int]]:
    """Real October 2024 sample counts per direction and country."""
    return {
        d: dict(
            zip(
                calibration_table(d).column("country_code").to_pylist(),
                calibration_table(d).column("sample_count").to_pylist(),
                strict=True,
            )
        )
        for d in DIRECTIONS
    }


@cache
def universe(seed: int, scale: float) -> Universe:
    """The synthetic places, the same for every month of one (seed, scale)."""
    rng = np.random.default_rng([seed, 0])
    tests = _country_tests()
    countries = tuple(sorted(set(tests["downloads"]) | set(tests["uploads"])))
    volume = np.array(
        [tests["downloads"].get(c) or tests["uploads"][c] for c in countries], dtype=float
    )
    # Big countries have more places, but far less than in proportion to their tests.
    weight = volume**0.55 / (volume**0.55).sum()
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    next_asn = SYNTHETIC_ASN_BASE + 1
    for ci, tests_c in enumerate(volume):
        n_sub = int(np.clip(round(SUBDIVISIONS * scale * weight[ci]), 1, 999))
        n_city = max(n_sub, round(CITIES * scale * weight[ci]))
        n_asn = max(1, round(ASNS * scale * weight[ci]))
        city_sub = np.sort(rng.choice(n_sub, size=n_city, p=_zipf(n_sub, 0.9))) + 1
        city_no = np.arange(n_city) - np.searchsorted(city_sub, city_sub) + 1
        city_share = _zipf(n_city)[rng.permutation(n_city)]
        expected = city_share * tests_c * scale
        k = np.clip(np.round(ASN_PER_CITY * expected**ASN_EXPONENT), 1, n_asn).astype(int)
        # Each city sees a run of the country's ASNs, starting more often at the big ones;
        # cities of one subdivision start near each other (regional networks).
        sub_first = np.floor(n_asn * rng.random(n_sub + 1) ** 3).astype(int)
        first = sub_first[city_sub] + np.floor(k * REGIONAL_JITTER * rng.random(n_city))
        first = first.astype(int)
        city_of_pair = np.repeat(np.arange(n_city), k)
        rank = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
        asn_index = (first[city_of_pair] + rank) % n_asn
        within = np.concatenate([_zipf(int(n), ASN_SKEW) for n in k])
        order = np.lexsort((asn_index, city_of_pair))
        parts["country"].append(np.full(len(order), ci))
        parts["sub"].append(city_sub[city_of_pair][order])
        parts["city"].append(city_no[city_of_pair][order])
        parts["asn"].append(next_asn + asn_index[order])
        parts["share"].append((city_share[city_of_pair] * within)[order])
        next_asn += n_asn
    return Universe(
        countries, *(np.concatenate(parts[k]) for k in ("country", "sub", "city", "asn", "share"))
    )


# --- one month ----------------------------------------------------------------------------


def _keys(u: Universe, level_keys: tuple[str, ...], rows: np.ndarray) -> dict[str, pa.Array]:
    """Key columns for the given pairs, named like the synthetic sample's places."""
    cc = np.array(u.countries, dtype=object)[u.country[rows]]
    sub = u.sub[rows].astype(str)
    out: dict[str, pa.Array] = {}
    for key in level_keys:
        if key == "country_code":
            values = cc
        elif key == "subdivision1_iso_code":
            values = cc + "-S" + np.char.zfill(sub, 3).astype(object)
        elif key == "subdivision1_name":
            values = "Synthetic Region " + sub.astype(object) + " of " + cc
        elif key == "city":
            values = (
                "Synthetic City "
                + cc
                + "-"
                + np.char.zfill(sub, 3).astype(object)
                + "-"
                + np.char.zfill(u.city[rows].astype(str), 4).astype(object)
            )
        elif key == "asn":
            out[key] = pa.array(u.asn[rows], pa.int64())
            continue
        elif key == "as_name":
            values = (
                "SYNTHETIC-AS"
                + u.asn[rows].astype(str).astype(object)
                + " - Synthetic Network of "
                + cc
            )
        else:
            raise KeyError(key)
        out[key] = pa.array(values, pa.string())
    return out


def _group_ids(u: Universe, dataset: Dataset) -> np.ndarray:
    """Per pair, the id of its row at the dataset's level (pairs are sorted by place)."""
    cols = {"country_code": u.country, "subdivision1_iso_code": u.sub, "city": u.city, "asn": u.asn}
    used = [cols[k] for k in dataset.keys if k in cols]
    order = np.lexsort(tuple(reversed(used)))
    stacked = np.stack([c[order] for c in used], axis=1)
    new = np.ones(len(order), dtype=bool)
    new[1:] = (stacked[1:] != stacked[:-1]).any(axis=1)
    ids = np.empty(len(order), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def _order_statistics(rng: np.random.Generator, n: np.ndarray) -> np.ndarray:
    """Uniform order statistics at OFFSETS for groups of ``n`` draws, shape (rows, 9).

    The k-th of n sorted uniforms is S_k / S_(n+1) for cumulative sums S of
    exponentials, so only the nine needed ranks are drawn, via Gamma increments;
    equal ranks (small groups) give equal values, as quantiles of few tests do.
    """
    ranks = np.floor(np.outer(n - 1, np.array(OFFSETS) / 100)).astype(np.int64)
    steps = np.diff(ranks, axis=1, prepend=-1)
    tail = n - ranks[:, -1]
    sums = np.cumsum(rng.gamma(steps), axis=1)
    return sums / (sums[:, -1] + rng.gamma(tail))[:, None]


@cache
def _knot_matrix(
    direction: str, metric: str, countries: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Quantile-function knots per country (rows of NaN where the country is absent)."""
    rows = {r["country_code"]: r for r in calibration_table(direction).to_pylist()}
    probs = values = None
    table: list[np.ndarray | None] = []
    for c in countries:
        if c in rows:
            probs, values = _knots(rows[c], metric)
            table.append(values)
        else:
            table.append(None)
    assert probs is not None and values is not None
    return probs, np.array([v if v is not None else np.full(len(probs), np.nan) for v in table])


def _quantiles(
    u: np.ndarray, country: np.ndarray, probs: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Piecewise-linear quantile function of each row's country, evaluated at ``u``."""
    j = np.clip(np.searchsorted(probs, u, side="right"), 1, len(probs) - 1)
    lo, hi = values[country[:, None], j - 1], values[country[:, None], j]
    t = (u - probs[j - 1]) / (probs[j] - probs[j - 1])
    return lo + t * (hi - lo)


def month_table(dataset: Dataset, period: Period, seed: int, scale: float) -> pa.Table:
    """One cache entry's rows: the dataset's schema, sorted by its keys like the template."""
    u = universe(seed, scale)
    direction_index = DIRECTIONS.index(dataset.direction)
    tests = _country_tests()[dataset.direction]
    country_tests = np.array([tests.get(c, 0) for c in u.countries], dtype=float)
    count_rng = np.random.default_rng(
        [seed, period.start.year, period.start.month, direction_index]
    )
    pair_counts = count_rng.poisson(u.share * country_tests[u.country])
    ids = _group_ids(u, dataset)
    counts = np.bincount(ids, weights=pair_counts).astype(np.int64)
    first_pair = np.full(len(counts), len(ids))
    np.minimum.at(first_pair, ids, np.arange(len(ids)))
    present = counts > 0
    counts, pairs = counts[present], first_pair[present]
    country = u.country[pairs]

    rng = np.random.default_rng(
        [seed, period.start.year, period.start.month, DATASETS.index(dataset) + 2]
    )
    months = months_between(CALIBRATION_MONTH, period.start)
    growth = MONTHLY_THROUGHPUT_GROWTH**months
    columns = _keys(u, dataset.keys, pairs)
    columns["sample_count"] = pa.array(counts, pa.int64())
    for metric in dataset.metrics:
        probs, knots = _knot_matrix(dataset.direction, metric, u.countries)
        at_offsets = _quantiles(_order_statistics(rng, counts), country, probs, knots)
        if metric in ("download", "upload"):
            at_offsets *= growth * rng.lognormal(0, THROUGHPUT_SPREAD, len(counts))[:, None]
        elif metric == "latency":
            factor = rng.lognormal(0, LATENCY_SPREAD, len(counts))[:, None]
            at_offsets = np.round(at_offsets * factor / growth**0.5, 3)
        else:
            factor = rng.lognormal(0, LOSS_SPREAD, len(counts))[:, None]
            at_offsets = np.clip(at_offsets * factor, 0.0, 1.0)
        for p in PERCENTILES:
            column = at_offsets[:, OFFSETS.index(quantile_offset(metric, p))]
            columns[f"{metric}_p{p}"] = pa.array(column, pa.float64())
    table = pa.table([columns[f.name] for f in dataset.schema], schema=dataset.schema)
    return table.sort_by([(k, "ascending") for k in dataset.keys])


# --- writing ------------------------------------------------------------------------------
