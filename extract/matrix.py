"""``pipeline.yaml``: the query matrix, validated whole before anything runs.

Upstream's format (``version: 0``, ``matrix.dates`` of ``{start, end}``,
``matrix.granularities``) plus one shorthand: a dates item ``{months: "A..B"}``
expands to every month from A to B, both inclusive (``"2009-01..2026-02"``).
Every problem is collected and reported together, each naming its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from extract.cache.layout import Entry
from extract.datasets import GRANULARITY_LEVELS, datasets_for

SUPPORTED_VERSION = 0
_TOP_KEYS = {"version", "matrix"}
_MATRIX_KEYS = {"dates", "granularities"}


class ConfigError(Exception):
    """All problems of one config file; ``str()`` is the message a user reads."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in the pipeline config:\n{lines}")


@dataclass(frozen=True)
class Period:
    start: date
    end: date


@dataclass(frozen=True)
class Matrix:
    periods: tuple[Period, ...]
    granularities: tuple[str, ...]

    def entries(self) -> list[Entry]:
        """Every (period, dataset) cell, period by period."""
        datasets = datasets_for(self.granularities)
        return [Entry(d, p.start, p.end) for p in self.periods for d in datasets]


def _month_start(text: Any, field: str, problems: list[str]) -> date | None:
    try:
        year, month = str(text).split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        problems.append(f"{field}: {text!r} is not a month (YYYY-MM)")
        return None


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _parse_date(value: Any, field: str, problems: list[str]) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problems.append(f"{field}: {value!r} is not a date (YYYY-MM-DD)")
        return None


def _parse_dates_item(item: Any, field: str, problems: list[str]) -> list[Period]:
    if not isinstance(item, dict):
        problems.append(f"{field}: expected a mapping {{start, end}} or {{months: A..B}}, "
                        f"got {type(item).__name__}")
        return []
    if "months" in item:
        unknown = sorted(set(item) - {"months"})
        if unknown:
            problems.append(f"{field}: unknown key(s) {unknown} beside 'months'")
        spec = str(item["months"])
        if ".." not in spec:
            problems.append(f"{field}.months: {spec!r} must look like 'YYYY-MM..YYYY-MM'")
            return []
        first_text, last_text = spec.split("..", 1)
        first = _month_start(first_text.strip(), f"{field}.months", problems)
        last = _month_start(last_text.strip(), f"{field}.months", problems)
        if first is None or last is None:
            return []
        if first > last:
            problems.append(f"{field}.months: {spec!r} is reversed (first month after last)")
            return []
        periods = []
        while first <= last:
            periods.append(Period(first, _next_month(first)))
            first = _next_month(first)
        return periods
    unknown = sorted(set(item) - {"start", "end"})
    if unknown:
        problems.append(f"{field}: unknown key(s) {unknown} (expected start, end)")
    for key in ("start", "end"):
        if key not in item:
            problems.append(f"{field}.{key}: missing")
    if "start" not in item or "end" not in item:
        return []
    start = _parse_date(item["start"], f"{field}.start", problems)
    end = _parse_date(item["end"], f"{field}.end", problems)
    if start is None or end is None:
        return []
    if start >= end:
        problems.append(f"{field}: start {start} is not before end {end} (end is exclusive)")
        return []
    return [Period(start, end)]


def parse_month_range(spec: str, field: str) -> tuple[list[Period], list[str]]:
    """The ``months: "A..B"`` shorthand on its own (also ``iqb sample --months``)."""
    problems: list[str] = []
    periods = _parse_dates_item({"months": spec}, field, problems)
    return periods, problems


def parse_matrix(doc: Any, path: Path) -> Matrix:
    """Validate a loaded document; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise ConfigError(path, [f"top level: expected a mapping, got {type(doc).__name__}"])
    for key in sorted(set(doc) - _TOP_KEYS):
        problems.append(f"{key}: unknown key (expected: version, matrix)")
    if "version" not in doc:
        problems.append("version: missing (expected 0)")
    elif doc["version"] != SUPPORTED_VERSION or isinstance(doc["version"], bool):
        problems.append(f"version: {doc['version']!r} is not supported (expected 0)")
    matrix = doc.get("matrix")
    periods: list[Period] = []
    granularities: list[str] = []
    if not isinstance(matrix, dict):
        problems.append("matrix: missing or not a mapping (expected dates and granularities)")
    else:
        for key in sorted(set(matrix) - _MATRIX_KEYS):
            problems.append(f"matrix.{key}: unknown key (expected: dates, granularities)")
        dates = matrix.get("dates")
        if not isinstance(dates, list) or not dates:
            problems.append("matrix.dates: missing or not a non-empty list")
        else:
            for i, item in enumerate(dates):
                periods += _parse_dates_item(item, f"matrix.dates[{i}]", problems)
            seen: set[Period] = set()
            for p in periods:
                if p in seen:
                    problems.append(f"matrix.dates: period {p.start}..{p.end} is listed twice")
                seen.add(p)
        grans = matrix.get("granularities")
        if not isinstance(grans, list) or not grans:
            problems.append("matrix.granularities: missing or not a non-empty list")
        else:
            for i, g in enumerate(grans):
                if g not in GRANULARITY_LEVELS:
                    problems.append(f"matrix.granularities[{i}]: unknown granularity {g!r} "
                                    f"(known: {', '.join(GRANULARITY_LEVELS)})")
                elif g in granularities:
                    problems.append(f"matrix.granularities[{i}]: {g!r} is listed twice")
                else:
                    granularities.append(g)
    if problems:
        raise ConfigError(path, problems)
    return Matrix(tuple(periods), tuple(granularities))


def load_matrix(path: Path) -> Matrix:
    """Read and validate a pipeline file; every failure is a :class:`ConfigError`."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(path, [f"cannot read the file: {err.strerror or err}"]) from err
    except UnicodeDecodeError as err:
        raise ConfigError(path, [f"not UTF-8 text: {err}"]) from err
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(path, [f"not valid YAML: {err}"]) from err
    return parse_matrix(doc, path)
