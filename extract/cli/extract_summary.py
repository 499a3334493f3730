"""What ``iqb extract run`` prints once the matrix has run.

Kept apart from the command: the summary is the part users read and tests
match, and it changes for other reasons (wording, new outcomes) than the
options and engine set-up do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from extract.cli.common import err, out

if TYPE_CHECKING:
    from extract.extraction.runner import Summary


def print_estimate(summary: Summary, price_per_tib: float, cap: int | None) -> None:
    """Bytes each pending entry would scan, the total, and its on-demand price."""
    from extract.extraction.engines.bigquery import format_bytes, on_demand_cost
    from extract.extraction.runner import Outcome

    priced = [(r, r.scan_bytes) for r in summary.reports if r.scan_bytes is not None]
    if not priced:
        out.print("nothing to price: no BigQuery job would run")
        return
    over = sum(cap is not None and scan > cap for _, scan in priced)
    table = Table(title="BigQuery dry run: bytes to be scanned")
    table.add_column("entry")
    table.add_column("scan", justify="right")
    table.add_column("over cap")
    for r, scan in priced:
        pulled = r.outcome == Outcome.WOULD_PULL
        table.add_row(
            r.entry.label + (" (in the remote: pulled, no query)" if pulled else ""),
            format_bytes(scan),
            "[red]yes[/]" if cap is not None and scan > cap else "",
        )
    out.print(table)
    total = sum(scan for _, scan in priced)
    queries = sum(r.outcome == Outcome.PENDING for r, _ in priced)
    out.print(
        f"total: {format_bytes(total)} ({total:,} bytes) in {queries} queries; "
        f"estimated on-demand cost ${on_demand_cost(total, price_per_tib):,.2f} "
        f"at ${price_per_tib:g}/TiB (--price-per-tib)",
        highlight=False,
    )
    if over and cap is not None:
        out.print(
            f"{over} entr{'y' if over == 1 else 'ies'} would scan more than "
            f"--maximum-bytes-billed ({format_bytes(cap)}): those jobs would fail "
            "(unbilled); raise the cap or leave them out",
            highlight=False,
        )


def print_summary(summary: Summary, dry_run: bool) -> None:
    from extract.extraction.runner import Outcome

    table = Table(title="dry run: nothing was executed" if dry_run else "extract summary")
    for col in ("outcome", "entries", "rows", "MB", "seconds"):
        table.add_column(col, justify="left" if col == "outcome" else "right")
    for outcome in Outcome:
        reports = [r for r in summary.reports if r.outcome == outcome]
        if reports:
            table.add_row(
                outcome.value,
                str(len(reports)),
                f"{sum(r.rows for r in reports):,}",
                f"{sum(r.bytes for r in reports) / 1e6:.1f}",
                f"{sum(r.seconds for r in reports):.1f}",
            )
    out.print(table)
    _print_left_out(summary)
    _print_no_input(summary)
    stale = summary.count(Outcome.STALE)
    if stale:
        out.print(
            f"{stale} entr{'y is' if stale == 1 else 'ies are'} stale (written by an "
            "older template): re-run them with --refresh-stale"
        )
    _print_failures(summary)
    if dry_run:
        for r in summary.reports:
            if r.outcome == Outcome.PENDING and r.scan_bytes is None:  # priced ones: a table
                out.print(f"would run  {r.entry.label}", highlight=False)


def _print_left_out(summary: Summary) -> None:
    """Measurements the templates left out as NaN, infinite or out of range, where any were."""
    hit = [r for r in summary.reports if r.left_out]
    if not hit:
        return
    total = sum(r.left_out for r in hit)
    shown = ", ".join(f"{r.entry.label} ({r.left_out:,})" for r in hit[:6])
    more = f" and {len(hit) - 6} more" if len(hit) > 6 else ""
    out.print(
        f"left out {total:,} measurement(s) with a NaN, infinite or out-of-range value "
        f"(not in any percentile or sample_count): {shown}{more}; each entry's stats.json "
        "records its count (left_out_invalid)",
        highlight=False,
    )


def _print_no_input(summary: Summary) -> None:
    by_period: dict[str, list[str]] = {}
    for r in summary.no_input:
        by_period.setdefault(f"{r.entry.start:%Y-%m-%d}..{r.entry.end:%Y-%m-%d}", []).append(
            r.entry.dataset.name
        )
    if not by_period:
        return
    periods = sorted(by_period)
    shown = ", ".join(periods[:6]) + (f" and {len(periods) - 6} more" if len(periods) > 6 else "")
    err.print(
        f"[yellow]no input[/] for {len(periods)} period(s): {shown}; nothing was "
        "written for them (no raw data there: `iqb sample --months A..B` makes "
        "synthetic data, or use --engine bigquery)",
        highlight=False,
    )
    reasons = sorted({r.error for r in summary.no_input if "expected Parquet" in r.error})
    for reason in reasons[:3]:  # no raw folder at all: say where it was looked for
        err.print(f"  {reason}", markup=False, highlight=False)


def _print_failures(summary: Summary) -> None:
    """Each failure was printed as it happened; here, one line per distinct reason."""
    by_reason: dict[str, list[str]] = {}
    for r in summary.failed:
        if not r.fatal:  # said once, by the caller
            by_reason.setdefault(r.error, []).append(r.entry.label)
    for reason, labels in by_reason.items():
        if len(labels) == 1:
            err.print(f"[red]failed[/] {labels[0]}: {escape(reason)}", highlight=False)
            continue
        shown = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
        err.print(f"[red]{len(labels)} failed[/] ({shown}): {escape(reason)}", highlight=False)
