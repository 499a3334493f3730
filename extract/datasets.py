"""The twelve datasets of the IQB cache: names, key columns and one Arrow schema each.

Every other layer (templates, engines, cache writer, dbt sources, sync) derives
what it needs from here, so the data contract lives in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa

PERCENTILES: tuple[int, ...] = (1, 5, 10, 25, 50, 75, 90, 95, 99)
DIRECTIONS: tuple[str, ...] = ("downloads", "uploads")

# granularity (pipeline.yaml) -> level (dataset name suffix)
GRANULARITY_LEVELS: dict[str, str] = {
    "country": "country",
    "country_asn": "country_asn",
    "subdivision1": "country_subdivision1",
    "subdivision1_asn": "country_subdivision1_asn",
    "city": "country_city",
    "city_asn": "country_city_asn",
}

_SUBDIVISION_KEYS = ("country_code", "subdivision1_iso_code", "subdivision1_name")
_ASN_KEYS = ("asn", "as_name")

LEVEL_KEYS: dict[str, tuple[str, ...]] = {
    "country": ("country_code",),
    "country_asn": ("country_code", *_ASN_KEYS),
    "country_subdivision1": _SUBDIVISION_KEYS,
    "country_subdivision1_asn": (*_SUBDIVISION_KEYS, *_ASN_KEYS),
    "country_city": (*_SUBDIVISION_KEYS, "city"),
    "country_city_asn": (*_SUBDIVISION_KEYS, "city", *_ASN_KEYS),
}

# key column -> raw measurement field (BigQuery path)
KEY_SOURCE_FIELDS: dict[str, str] = {
    "country_code": "client.Geo.CountryCode",
    "subdivision1_iso_code": "client.Geo.Subdivision1ISOCode",
    "subdivision1_name": "client.Geo.Subdivision1Name",
    "city": "client.Geo.city",
    "asn": "client.Network.ASNumber",
    "as_name": "client.Network.ASName",
}

# metric prefix -> (raw field, lower_is_better)
METRIC_FIELDS: dict[str, tuple[str, bool]] = {
    "download": ("a.MeanThroughputMbps", False),
    "upload": ("a.MeanThroughputMbps", False),
    "latency": ("a.MinRTT", True),
    "loss": ("a.LossRate", True),
}
DIRECTION_METRICS: dict[str, tuple[str, ...]] = {
    "downloads": ("download", "latency", "loss"),
    "uploads": ("upload",),
}
SOURCE_TABLES: dict[str, str] = {
    "downloads": "measurement-lab.ndt.unified_downloads",
    "uploads": "measurement-lab.ndt.unified_uploads",
}

# Bump when a dataset's Arrow schema changes; written into stats.json.
SCHEMA_VERSION = 1


def quantile_offset(metric: str, percentile: int) -> int:
    """OFFSET into APPROX_QUANTILES(x, 100) for a labelled percentile.

    Lower-is-better metrics invert their labels so that p95 always means what
    the best ~5% of users get (the polarity convention).
    """
    _, lower_is_better = METRIC_FIELDS[metric]
    return 100 - percentile if lower_is_better else percentile


@dataclass(frozen=True)
class Dataset:
    """One dataset: a direction at a level, e.g. ``downloads_by_country_asn``."""

    direction: str
    level: str

    @property
    def name(self) -> str:
        return f"{self.direction}_by_{self.level}"

    @property
    def keys(self) -> tuple[str, ...]:
        return LEVEL_KEYS[self.level]

    @property
    def metrics(self) -> tuple[str, ...]:
        return DIRECTION_METRICS[self.direction]

    @property
    def metric_columns(self) -> tuple[str, ...]:
        return tuple(f"{m}_p{p}" for m in self.metrics for p in PERCENTILES)

    @property
    def granularity(self) -> str:
        return next(g for g, lvl in GRANULARITY_LEVELS.items() if lvl == self.level)

    @property
    def source_table(self) -> str:
        return SOURCE_TABLES[self.direction]

    @cached_property
    def schema(self) -> pa.Schema:
        fields = [pa.field(k, pa.int64() if k == "asn" else pa.string()) for k in self.keys]
        fields.append(pa.field("sample_count", pa.int64()))
        fields += [pa.field(c, pa.float64()) for c in self.metric_columns]
        return pa.schema(fields)

    @property
    def template_name(self) -> str:
        return f"{self.name}.sql"


DATASETS: tuple[Dataset, ...] = tuple(
    Dataset(direction, level) for level in LEVEL_KEYS for direction in DIRECTIONS
)
DATASETS_BY_NAME: dict[str, Dataset] = {d.name: d for d in DATASETS}


def datasets_for(granularities: list[str] | tuple[str, ...]) -> list[Dataset]:
    """Both directions for each granularity, in matrix order."""
    levels = [GRANULARITY_LEVELS[g] for g in granularities]
    return [d for lvl in levels for d in DATASETS if d.level == lvl]
