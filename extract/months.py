"""Calendar months, the unit of the matrix, the sample and the report: the one home
of month arithmetic (a date here is any day of its month unless said otherwise)."""

from __future__ import annotations

from datetime import UTC, date, datetime


def next_month(d: date) -> date:
    """The first day of the month after ``d``'s."""
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def months_between(earlier: date, later: date) -> int:
    """Whole calendar months from ``earlier``'s month to ``later``'s (negative if before)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def is_one_month(start: date, end: date) -> bool:
    """Whether [start, end) is exactly one calendar month, first day to first day."""
    return start.day == 1 and end.day == 1 and months_between(start, end) == 1


# M-Lab's first NDT data is from 2009: an earlier period is a typo (a year like
# 0001 would even make a cache key upstream's layout cannot parse).
FIRST_YEAR = 2009


def current_month() -> date:
    """The first day of the current month: of the later of the local and the UTC date,
    so a month that has begun anywhere the user is counts as begun."""
    today = max(date.today(), datetime.now(UTC).date())
    return today.replace(day=1)


def label(d: date) -> str:
    """YYYY-MM, four-digit year whatever the platform's strftime does with year 1."""
    return f"{d.year:04d}-{d.month:02d}"


def month_problem(start: date) -> str | None:
    """Why the month of ``start`` is not one that can have data (before M-Lab's first
    NDT data, or after the current month), else None."""
    if start.year < FIRST_YEAR:
        return f"{label(start)} is before {FIRST_YEAR}, when M-Lab's NDT data starts"
    now = current_month()
    if start > now:
        return f"{label(start)} starts after the current month ({label(now)}): it has no data yet"
    return None


def period_problem(start: date, end: date) -> str | None:
    """Why [start, end) is not a period of this workspace, else None.

    The one rule for every way a period enters (``pipeline.yaml``, a manifest key on
    pull or push, a folder in the cache at ``dbt build``): a calendar month, first
    day to first day of the next, that has begun. A week or a future month would
    be built, published and shown as the latest period like any other.
    """
    if not is_one_month(start, end):
        return (
            f"{start}..{end} is not a calendar month (it must run from the first day "
            "of a month to the first day of the next)"
        )
    return month_problem(start)
