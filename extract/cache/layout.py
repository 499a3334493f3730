"""The cache entries, upstream's layout under ``cache/v1/`` of the artifacts root.

``artifacts/cache/v1/{start:%Y%m%dT000000Z}/{end:%Y%m%dT000000Z}/{dataset}/data.parquet``
(the rest of the tree: ``extract/paths.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from extract.datasets import DATASETS_BY_NAME, Dataset
from extract.months import period_problem
from extract.paths import CACHE_VERSION_DIR

DATA_FILE = "data.parquet"
STATS_FILE = "stats.json"
_STAMP = "%Y%m%dT000000Z"

# cache/v1/<start>/<end>/<dataset>/<file>, as a manifest key or a relative path
CACHE_KEY_RE = re.compile(
    rf"^{re.escape(CACHE_VERSION_DIR)}/(?P<start>\d{{8}}T000000Z)/(?P<end>\d{{8}}T000000Z)/"
    r"(?P<dataset>[a-z0-9_]+)/(?P<file>data\.parquet|stats\.json)$"
)
# The period of a path in the cache for SQL (DuckDB's regexp_extract, through the dbt
# plugin): group 1 is the start and group 2 the end, as YYYYMMDD.
PERIOD_SQL_RE = f"{CACHE_VERSION_DIR}/([0-9]{{8}})T000000Z/([0-9]{{8}})T000000Z/"


def stamp(d: date) -> str:
    return d.strftime(_STAMP)


def parse_stamp(text: str) -> date:
    return datetime.strptime(text, _STAMP).date()


@dataclass(frozen=True)
class Entry:
    """One cached query result: a dataset over one period [start, end)."""

    dataset: Dataset
    start: date
    end: date

    @property
    def key(self) -> str:
        """Relative directory, identical to upstream's bucket layout."""
        return f"{CACHE_VERSION_DIR}/{stamp(self.start)}/{stamp(self.end)}/{self.dataset.name}"

    def dir(self, artifacts: Path) -> Path:
        return artifacts / self.key

    def data_path(self, artifacts: Path) -> Path:
        return self.dir(artifacts) / DATA_FILE

    def stats_path(self, artifacts: Path) -> Path:
        return self.dir(artifacts) / STATS_FILE

    @property
    def label(self) -> str:
        return f"{self.dataset.name} {self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"


def _parse_shape(key: str) -> tuple[Entry, str] | None:
    """Entry and file name for a key in the layout's shape, whatever its period."""
    m = CACHE_KEY_RE.match(key)
    if not m or m["dataset"] not in DATASETS_BY_NAME:
        return None
    try:
        start, end = parse_stamp(m["start"]), parse_stamp(m["end"])
    except ValueError:
        return None
    if start >= end:
        return None
    return Entry(DATASETS_BY_NAME[m["dataset"]], start, end), m["file"]


def cache_key_period(key: str) -> tuple[Entry, str, str | None] | None:
    """For a key in the layout's shape: its entry, file name, and why its period is
    refused (``extract/months.py``: not a calendar month, or not begun) or None;
    None for any other key. The cache catalog reports refused folders with this."""
    parsed = _parse_shape(key)
    if parsed is None:
        return None
    entry, name = parsed
    return entry, name, period_problem(entry.start, entry.end)


def parse_cache_key(key: str) -> tuple[Entry, str] | None:
    """Entry and file name for a key inside the known layout, else None.

    A key whose period is not a calendar month that has begun is outside it: a
    pull, a push and every other reader of keys refuse it alike
    (:func:`cache_key_period` says why).
    """
    found = cache_key_period(key)
    if found is None or found[2] is not None:
        return None
    return found[0], found[1]
