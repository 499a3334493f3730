"""``pipeline.yaml``: the query matrix, validated whole before anything runs.

Upstream's format (``version: 0``, ``matrix.dates`` of ``{start, end}``,
``matrix.granularities``) plus one shorthand: a dates item ``{months: "A..B"}``
expands to every month from A to B, both inclusive (``"2009-01..2026-02"``).
A period is a calendar month that has begun (``extract/months.py``, the rule a
pull, the cache catalog and a push apply too); ``{start, end}`` must name one.
Every problem is collected and reported together, each naming its field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from extract.cache.layout import Entry
from extract.datasets import GRANULARITY_LEVELS, datasets_for
from extract.months import month_problem, next_month, period_problem

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


def _begun(start: date, field: str, problems: list[str]) -> date | None:
    """``start`` if its month can have data (extract/months.py), else a problem and None."""
    problem = month_problem(start)
    if problem is None:
        return start
    problems.append(f"{field}: {problem}")
    return None


def _month_start(text: Any, field: str, problems: list[str]) -> date | None:
    try:
        # exactly YYYY-MM: "2024-1" or "2024-010" would be read as a month, silently
        if not re.fullmatch(r"\d{4}-\d{2}", str(text)):
            raise ValueError(text)
        year, month = str(text).split("-")
        start = date(int(year), int(month), 1)
    except ValueError:
        problems.append(f"{field}: {text!r} is not a month (YYYY-MM)")
        return None
    return _begun(start, field, problems)


def _parse_date(value: Any, field: str, problems: list[str]) -> date | None:
    """A calendar day; a time of day is refused, not dropped (periods are whole days)."""
    if isinstance(value, datetime):  # YAML reads an unquoted "2024-10-01 12:00:00" so
        problems.append(
            f"{field}: {value} has a time of day; periods are whole days (write YYYY-MM-DD)"
        )
        return None
    if isinstance(value, date):
        return value
    text = str(value)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        problems.append(
            f"{field}: {value!r} is not a date (YYYY-MM-DD)"
            + (
                "; periods are whole days, without a time"
                if re.match(r"\d{4}-\d{2}-\d{2}[T ]", text)
                else ""
            )
        )
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"{field}: {value!r} is not a date (YYYY-MM-DD)")
        return None


def _parse_months(spec: str, field: str, problems: list[str]) -> list[Period]:
    """One period per month of ``A..B`` (both included)."""
    if ".." not in spec:
        problems.append(f"{field}: {spec!r} must look like 'YYYY-MM..YYYY-MM'")
        return []
    first_text, last_text = spec.split("..", 1)
    first = _month_start(first_text.strip(), f"{field} (first month)", problems)
    last = _month_start(last_text.strip(), f"{field} (last month)", problems)
    if first is None or last is None:
        return []
    if first > last:
        problems.append(f"{field}: {spec!r} is reversed (first month after last)")
        return []
    periods = []
    while first <= last:
        periods.append(Period(first, next_month(first)))
        first = next_month(first)
    return periods


def _parse_dates_item(item: Any, field: str, problems: list[str]) -> list[Period]:
    if not isinstance(item, dict):
        problems.append(
            f"{field}: expected a mapping {{start, end}} or {{months: A..B}}, "
            f"got {type(item).__name__}"
        )
        return []
    if "months" in item:
        unknown = sorted(set(item) - {"months"})
        if unknown:
            problems.append(f"{field}: unknown key(s) {unknown} beside 'months'")
        return _parse_months(str(item["months"]), f"{field}.months", problems)
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
    problem = period_problem(start, end)
    if problem is not None:
        problems.append(f"{field}: {problem}")
        return []
    return [Period(start, end)]


def parse_month_range(spec: str, field: str) -> tuple[list[Period], list[str]]:
    """The ``months: "A..B"`` shorthand on its own (also ``iqb sample --months``)."""
    problems: list[str] = []
    periods = _parse_months(spec, field, problems)
    return periods, problems


def _version_problem(doc: dict[Any, Any]) -> str | None:
    """Why the document's ``version`` is missing or unsupported, or None."""
    if "version" not in doc:
        return "version: missing (expected 0)"
    if type(doc["version"]) is not int or doc["version"] != SUPPORTED_VERSION:
        # 0.0 or false would equal 0 in Python: a version is the integer 0, nothing else
        return f"version: {doc['version']!r} is not supported (expected 0)"
    return None


def _parse_matrix_dates(dates: Any, problems: list[str]) -> list[Period]:
    """The periods of ``matrix.dates``, in order; each problem is appended to ``problems``."""
    if not isinstance(dates, list) or not dates:
        problems.append("matrix.dates: missing or not a non-empty list")
        return []
    periods: list[Period] = []
    for i, item in enumerate(dates):
        periods += _parse_dates_item(item, f"matrix.dates[{i}]", problems)
    seen: set[Period] = set()
    for p in periods:
        if p in seen:
            problems.append(f"matrix.dates: period {p.start}..{p.end} is listed twice")
        seen.add(p)
    return periods


def _parse_granularities(grans: Any, problems: list[str]) -> list[str]:
    """The known granularities of ``matrix.granularities``, each once, in order."""
    if not isinstance(grans, list) or not grans:
        problems.append("matrix.granularities: missing or not a non-empty list")
        return []
    granularities: list[str] = []
    for i, g in enumerate(grans):
        if not isinstance(g, str):
            problems.append(
                f"matrix.granularities[{i}]: expected a granularity name, "
                f"got a {type(g).__name__} ({g!r})"
            )
        elif g not in GRANULARITY_LEVELS:
            problems.append(
                f"matrix.granularities[{i}]: unknown granularity {g!r} "
                f"(known: {', '.join(GRANULARITY_LEVELS)})"
            )
        elif g in granularities:
            problems.append(f"matrix.granularities[{i}]: {g!r} is listed twice")
        else:
            granularities.append(g)
    return granularities


def parse_matrix(doc: Any, path: Path) -> Matrix:
    """Validate a loaded document; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise ConfigError(path, [f"top level: expected a mapping, got {type(doc).__name__}"])
    for key in sorted(set(doc) - _TOP_KEYS):
        problems.append(f"{key}: unknown key (expected: version, matrix)")
    version_problem = _version_problem(doc)
    if version_problem is not None:
        problems.append(version_problem)
    matrix = doc.get("matrix")
    periods: list[Period] = []
    granularities: list[str] = []
    if not isinstance(matrix, dict):
        problems.append("matrix: missing or not a mapping (expected dates and granularities)")
    else:
        for key in sorted(set(matrix) - _MATRIX_KEYS):
            problems.append(f"matrix.{key}: unknown key (expected: dates, granularities)")
        periods = _parse_matrix_dates(matrix.get("dates"), problems)
        granularities = _parse_granularities(matrix.get("granularities"), problems)
    if problems:
        raise ConfigError(path, problems)
    return Matrix(tuple(periods), tuple(granularities))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that records duplicated keys instead of letting the last one win silently.

    They are listed with every other problem of the file (``load_matrix``), not alone
    before them: a user fixes the whole file in one go.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    self.duplicates.append(
                        f"{key}: key written twice (lines {seen[key]} and {line}); "
                        "YAML would silently keep only the last"
                    )
                else:
                    seen[key] = line
            except TypeError:
                continue  # an unhashable key: the mapping constructor reports it
        return super().construct_mapping(node, deep=deep)


def load_matrix(path: Path) -> Matrix:
    """Read and validate a pipeline file; every failure is a :class:`ConfigError`."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(path, [f"cannot read the file: {err.strerror or err}"]) from err
    except UnicodeDecodeError as err:
        raise ConfigError(path, [f"not UTF-8 text: {err}"]) from err
    loader = _StrictLoader(text)  # a SafeLoader subclass: no arbitrary objects
    loader.name = str(path)  # its error marks name the file, not "<unicode string>"
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError as err:
        raise ConfigError(path, [*loader.duplicates, f"not valid YAML: {err}"]) from err
    finally:
        loader.dispose()
    try:
        matrix = parse_matrix(doc, path)
    except ConfigError as err:
        raise ConfigError(path, [*loader.duplicates, *err.problems]) from None
    if loader.duplicates:
        raise ConfigError(path, loader.duplicates)
    return matrix
