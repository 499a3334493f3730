"""Month arithmetic has one home, extract/months.py."""

from __future__ import annotations

import re
from datetime import date

from extract.months import is_one_month, months_between, next_month
from tests.conftest import REPO


def test_next_month_and_the_distance_between_months() -> None:
    assert next_month(date(2024, 12, 31)) == date(2025, 1, 1)
    assert next_month(date(2024, 1, 15)) == date(2024, 2, 1)
    assert months_between(date(2024, 10, 1), date(2025, 1, 20)) == 3
    assert months_between(date(2025, 1, 1), date(2024, 12, 1)) == -1
    assert is_one_month(date(2024, 12, 1), date(2025, 1, 1))
    assert not is_one_month(date(2024, 12, 2), date(2025, 1, 1))
    assert not is_one_month(date(2024, 11, 1), date(2025, 1, 1))


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
