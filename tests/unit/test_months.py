"""Month arithmetic has one home, extract/months.py."""

from __future__ import annotations

import re
from datetime import date

from extract.cache.layout import cache_key_period, parse_cache_key
from extract.months import current_month, is_one_month, months_between, next_month, period_problem
from tests.conftest import REPO


def test_next_month_and_the_distance_between_months() -> None:
    assert next_month(date(2024, 12, 31)) == date(2025, 1, 1)
    assert next_month(date(2024, 1, 15)) == date(2024, 2, 1)
    assert months_between(date(2024, 10, 1), date(2025, 1, 20)) == 3
    assert months_between(date(2025, 1, 1), date(2024, 12, 1)) == -1
    assert is_one_month(date(2024, 12, 1), date(2025, 1, 1))
    assert not is_one_month(date(2024, 12, 2), date(2025, 1, 1))
    assert not is_one_month(date(2024, 11, 1), date(2025, 1, 1))


def test_one_rule_for_periods_wherever_they_enter() -> None:
    """A calendar month that has begun; pipeline.yaml, a pull, a push and the cache catalog
    all read cache keys through parse_cache_key, which applies it."""
    now = current_month()
    assert period_problem(now, next_month(now)) is None
    assert period_problem(date(2009, 1, 1), date(2009, 2, 1)) is None
    assert "after the current month" in (
        period_problem(next_month(now), next_month(next_month(now))) or ""
    )
    assert "before 2009" in (period_problem(date(2008, 12, 1), date(2009, 1, 1)) or "")
    assert "not a calendar month" in (period_problem(date(2024, 10, 1), date(2024, 10, 8)) or "")
    assert "not a calendar month" in (period_problem(date(2024, 10, 1), date(2024, 12, 1)) or "")
    good = "cache/v1/20241001T000000Z/20241101T000000Z/downloads_by_country/stats.json"
    assert parse_cache_key(good) is not None
    for key in (
        "cache/v1/20540101T000000Z/20540201T000000Z/downloads_by_country/data.parquet",
        "cache/v1/20241001T000000Z/20241015T000000Z/downloads_by_country/data.parquet",
    ):
        assert parse_cache_key(key) is None, key
        found = cache_key_period(key)
        assert found is not None and found[2], key


def test_no_other_module_does_month_arithmetic() -> None:
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for top in ("extract", "bench")
        for path in sorted((REPO / top).rglob("*.py"))
        if path.name != "months.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"month\s*(?://|%|\+)\s*1?2?\b|\*\s*12\b|relativedelta|days=3[12]", line)
        and "months_between" not in line
    ]
    assert not found, "use extract/months.py:\n" + "\n".join(found)
