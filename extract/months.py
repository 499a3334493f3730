"""Calendar months, the unit of the matrix, the sample and the report: the one home
of month arithmetic (a date here is any day of its month unless said otherwise)."""

from __future__ import annotations

from datetime import date


def next_month(d: date) -> date:
    """The first day of the month after ``d``'s."""
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def months_between(earlier: date, later: date) -> int:
    """Whole calendar months from ``earlier``'s month to ``later``'s (negative if before)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def is_one_month(start: date, end: date) -> bool:
    """Whether [start, end) is exactly one calendar month, first day to first day."""
    return start.day == 1 and end.day == 1 and months_between(start, end) == 1
