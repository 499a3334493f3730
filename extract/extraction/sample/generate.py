"""Raw NDT-like measurements, calibrated to M-Lab's real October 2024 country table.

Each country of the real table gets rows in proportion to its real sample count
(with a floor, so small countries still appear), and each value is drawn from the
quantile function through the country's real p1..p99 (latency and loss read with
the polarity convention). Draws are stratified (one uniform per 1/n slice), so a
country's sample percentiles land on the real ones to within 1/n instead of
wandering with sampling noise. Places below country level (subdivisions, cities,
ASNs) are synthetic and say so in their names; ASNs come from the private-use
range 4200000000+ so they can never be mistaken for real networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from extract.cache.store import atomic_path
from extract.datasets import PERCENTILES, SOURCE_TABLES, quantile_offset
from extract.extraction.engines.duckdb import raw_table_name
from extract.months import months_between, next_month
from extract.paths import ArtifactPaths

CALIBRATION_MONTH = date(2024, 10, 1)
DEFAULT_ROWS = 2_000_000
MIN_ROWS_PER_COUNTRY = 100
SYNTHETIC_ASN_BASE = 4_200_000_000
# Share of rows whose ASN reports an alternative name, and rows lacking a key,
# so that downstream de-duplication and NULL filters have something to do.
ALT_AS_NAME_SHARE = 0.02
NULL_CITY_SHARE = 0.01
MONTHLY_THROUGHPUT_GROWTH = 1.01

GEO_TYPE = pa.struct(
    [
        ("CountryCode", pa.string()),
        ("Subdivision1ISOCode", pa.string()),
        ("Subdivision1Name", pa.string()),
        ("city", pa.string()),
    ]
)
NETWORK_TYPE = pa.struct([("ASNumber", pa.int64()), ("ASName", pa.string())])
A_TYPE = pa.struct(
    [
        ("MeanThroughputMbps", pa.float64()),
        ("MinRTT", pa.float64()),
        ("LossRate", pa.float64()),
    ]
)
RAW_SCHEMA = pa.schema(
    [
        ("date", pa.date32()),
        ("client", pa.struct([("Geo", GEO_TYPE), ("Network", NETWORK_TYPE)])),
        ("a", A_TYPE),
    ]
)


def calibration_table(direction: str) -> pa.Table:
    name = f"{direction}_by_country_2024-10.parquet"
    source = resources.files("extract").joinpath("extraction", "sample", "calibration", name)
    with resources.as_file(source) as path:
        return pq.read_table(path)


def month_range(first: date, last: date) -> list[date]:
    months, d = [], date(first.year, first.month, 1)
    while d <= last:
        months.append(d)
        d = next_month(d)
    return months


def _knots(row: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Quantile-function knots (probability, value) through a country's real percentiles."""
    probs = np.array([quantile_offset(metric, p) / 100 for p in PERCENTILES])
    values = np.array([row[f"{metric}_p{p}"] for p in PERCENTILES], dtype=float)
    order = np.argsort(probs)
    probs, values = probs[order], np.maximum.accumulate(values[order])
    # Tails beyond p1 / p99: extend the neighbouring slope, a little heavier at the top.
    low = max(0.0, values[0] - (values[1] - values[0]) * 0.25)
    high = values[-1] + (values[-1] - values[-2]) * 0.5
    return np.concatenate([[0.0], probs, [1.0]]), np.concatenate([[low], values, [high]])


def _stratified(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.permutation(n) + rng.random(n)) / n


def _zipf_weights(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** 1.1
    return w / w.sum()


@dataclass
class _Places:
    """The synthetic hierarchy of one country."""

    sub_codes: list[str]
    sub_names: list[str]
    cities: list[list[str]]
    asns: np.ndarray


def _places(cc: str, n: int) -> _Places:
    n_sub = int(np.clip(round(n**0.3), 1, 30))
    n_city = int(np.clip(round(n**0.2), 1, 15))
    n_asn = int(np.clip(round(n**0.35), 1, 80))
    country_index = (ord(cc[0]) - 65) * 26 + (ord(cc[1]) - 65) if len(cc) == 2 else 0
    return _Places(
        sub_codes=[f"{cc}-S{i:02d}" for i in range(1, n_sub + 1)],
        sub_names=[f"Synthetic Region {i} of {cc}" for i in range(1, n_sub + 1)],
        cities=[
            [f"Synthetic City {cc}-{i}-{j}" for j in range(1, n_city + 1)]
            for i in range(1, n_sub + 1)
        ],
        asns=SYNTHETIC_ASN_BASE + country_index * 100 + np.arange(1, n_asn + 1),
    )


def _country_rows(
    rng: np.random.Generator, direction: str, cc: str, row: dict, n: int, growth: float
) -> dict[str, np.ndarray]:
    places = _places(cc, n)
    sub = rng.choice(len(places.sub_codes), size=n, p=_zipf_weights(len(places.sub_codes)))
    n_city = len(places.cities[0])
    city_idx = rng.choice(n_city, size=n, p=_zipf_weights(n_city))
    asn_idx = rng.choice(len(places.asns), size=n, p=_zipf_weights(len(places.asns)))
    asn = places.asns[asn_idx]
    alt = rng.random(n) < ALT_AS_NAME_SHARE
    as_name = np.where(
        alt,
        np.char.add(np.char.add("SYNTHETIC-AS", asn.astype(str)), "-ALT"),
        np.char.add("SYNTHETIC-AS", asn.astype(str)),
    )
    city = np.array([places.cities[s][c] for s, c in zip(sub, city_idx, strict=True)], dtype=object)
    city[rng.random(n) < NULL_CITY_SHARE] = None
    out: dict[str, np.ndarray] = {
        "CountryCode": np.full(n, cc, dtype=object),
        "Subdivision1ISOCode": np.array(places.sub_codes, dtype=object)[sub],
        "Subdivision1Name": np.array(places.sub_names, dtype=object)[sub],
        "city": city,
        "ASNumber": asn,
        "ASName": as_name.astype(object),
    }
    if direction == "downloads":
        probs, values = _knots(row, "download")
        out["MeanThroughputMbps"] = np.interp(_stratified(rng, n), probs, values) * growth
        probs, values = _knots(row, "latency")
        out["MinRTT"] = np.interp(_stratified(rng, n), probs, values) / growth**0.5
        probs, values = _knots(row, "loss")
        out["LossRate"] = np.clip(np.interp(_stratified(rng, n), probs, values), 0.0, 1.0)
    else:
        probs, values = _knots(row, "upload")
        out["MeanThroughputMbps"] = np.interp(_stratified(rng, n), probs, values) * growth
        out["MinRTT"] = np.full(n, np.nan)
        out["LossRate"] = np.full(n, np.nan)
    return out


def rows_per_country(counts: np.ndarray, total_rows: int) -> np.ndarray:
    """Real sample-count shares scaled to ``total_rows``, floored for small countries."""
    share = counts / counts.sum()
    return np.maximum(np.round(share * total_rows).astype(np.int64), MIN_ROWS_PER_COUNTRY)


def generate_month(direction: str, month: date, rows: int, seed: int) -> pa.Table:
    """One month of one direction's raw measurements, deterministic from ``seed``."""
    table = calibration_table(direction).to_pylist()
    counts = np.array([r["sample_count"] for r in table], dtype=float)
    per_country = rows_per_country(counts, rows)
    months_from_calibration = months_between(CALIBRATION_MONTH, month)
    growth = MONTHLY_THROUGHPUT_GROWTH**months_from_calibration
    rng = np.random.default_rng([seed, month.year, month.month, direction == "uploads"])
    parts = [
        _country_rows(rng, direction, r["country_code"], r, int(n), growth)
        for r, n in zip(table, per_country, strict=True)
    ]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = len(cols["ASNumber"])
    days = (next_month(month) - month).days
    day = np.datetime64(month) + rng.integers(0, days, size=n).astype("timedelta64[D]")
    shuffle = rng.permutation(n)  # interleave countries, as real tables are

    def arr(name: str, typ: pa.DataType) -> pa.Array:
        values = cols[name][shuffle]
        if typ == pa.float64():
            return pa.array(values, typ, mask=np.isnan(values))
        return pa.array(values, typ)

    geo = pa.StructArray.from_arrays([arr(f.name, f.type) for f in GEO_TYPE], fields=list(GEO_TYPE))
    network = pa.StructArray.from_arrays(
        [arr(f.name, f.type) for f in NETWORK_TYPE], fields=list(NETWORK_TYPE)
    )
    client = pa.StructArray.from_arrays(
        [geo, network], fields=list(RAW_SCHEMA.field("client").type)
    )
    a = pa.StructArray.from_arrays([arr(f.name, f.type) for f in A_TYPE], fields=list(A_TYPE))
    dates = pa.array(day[shuffle].astype("datetime64[D]"), pa.date32())
    meta = {
        b"iqb_synthetic": b"true",
        b"iqb_note": b"synthetic sample calibrated to M-Lab's October 2024 country table",
    }
    return pa.Table.from_arrays([dates, client, a], schema=RAW_SCHEMA.with_metadata(meta))


def sample_path(artifacts: Path, direction: str, month: date) -> Path:
    return (
        ArtifactPaths(artifacts).raw
        / raw_table_name(SOURCE_TABLES[direction])
        / f"{month:%Y-%m}.parquet"
    )


def write_sample(
    artifacts: Path, months: list[date], rows: int = DEFAULT_ROWS, seed: int = 0
) -> list[tuple[Path, int]]:
    """Write downloads and uploads for each month; ``rows`` is downloads per month.

    Uploads get the real uploads/downloads ratio of sample counts.
    """
    down_total = sum(calibration_table("downloads").column("sample_count").to_pylist())
    up_total = sum(calibration_table("uploads").column("sample_count").to_pylist())
    written = []
    for month in months:
        for direction, n in (("downloads", rows), ("uploads", round(rows * up_total / down_total))):
            table = generate_month(direction, month, n, seed)
            path = sample_path(artifacts, direction, month)
            with atomic_path(path) as tmp:
                pq.write_table(table, tmp, compression="zstd", row_group_size=256_000)
            written.append((path, table.num_rows))
    return written
