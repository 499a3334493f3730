"""The printing side of ``iqb report --html`` (kept out of extract/cli.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from extract.report import ReportError
from extract.report_html.build import write_html_report


def html_report(
    root: Path,
    out_dir: Path | None,
    out: Console,
    fail: Callable[[str], typer.Exit],
    drill_limit: int = 50,
) -> None:
    try:
        rep = write_html_report(root, out_dir, drill_limit=drill_limit)
    except ReportError as exc:
        raise fail(str(exc)) from None
    data = sum(n for name, n in rep.files.items() if name.startswith("data/"))
    out.print(
        f"wrote {rep.index} ({rep.periods} period(s), {rep.countries} countries; "
        f"{rep.total_bytes / 1e6:.1f} MB in {len(rep.files)} files, of which data "
        f"{data / 1e6:.1f} MB)",
        highlight=False,
    )
    out.print(f"open it with a browser: file://{rep.index}", highlight=False)
