"""``iqb report``: what dbt built, in the terminal or as an offline HTML report.

The figures come from extract/results/report.py and the HTML from
extract/results/html/build.py; this module lays out the terminal tables and
says where the HTML went.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from extract.cli.common import artifacts_root, disk_errors, fail, out
from extract.cli.options import ArtifactsOpt


@disk_errors
def report(
    top: Annotated[int, typer.Option(help="How many best and worst countries to list.", min=1)] = 5,
    html: Annotated[
        bool,
        typer.Option(
            "--html",
            help="Write the offline HTML report (map, trends, drill-down) instead: "
            "<artifacts>/report/index.html, or the folder given.",
        ),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Argument(
            metavar="[DIR]", help="With --html: the report folder (default <artifacts>/report)."
        ),
    ] = None,
    drill_limit: Annotated[
        int,
        typer.Option(
            help="With --html: per country and level, the places with the most tests in the "
            "drill-down (the report's size grows with it; docs/report.md).",
            min=1,
        ),
    ] = 50,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Summarise the DuckDB file that dbt built: rows per mart, best and worst countries.

    With --html: a self-contained report folder that opens from file:// with no network.
    """
    from extract.results.report import ReportError, build_report, shell_command

    root = artifacts_root(artifacts)
    if html or out_dir is not None:
        _html_report(root, out_dir, drill_limit)
        return
    try:
        rep = build_report(root, top=top)
    except ReportError as exc:
        raise _failure(exc, root) from None
    if rep.state is not None:
        out.print(f"reading {rep.state.describe()}", highlight=False, soft_wrap=True)
    table = Table(title=f"marts in {rep.database}")
    table.add_column("mart", no_wrap=True)
    for col in ("rows", "periods", "latest period", "meet min samples"):
        table.add_column(col, justify="right")
    for m in rep.marts:
        share = f"{m.meets_min_samples / m.rows:.0%}" if m.rows else "-"
        table.add_row(m.name, f"{m.rows:,}", str(m.periods), str(m.latest or "-"), share)
    out.print(table)
    out.print(
        "rows with an IQB score (iqb_scores_by_*): "
        + ", ".join(f"{name.removeprefix('iqb_scores_by_')} {n:,}" for name, n in rep.scores),
        highlight=False,
    )
    if rep.not_scored:
        out.print(
            "country rows not scored: "
            + ", ".join(f"{n:,} {status.replace('_', ' ')}" for status, n in rep.not_scored.items())
            + " (score_status)",
            highlight=False,
        )
    if rep.synthetic_periods:
        out.print(
            "[bold red]SYNTHETIC data[/] (iqb sample), for trying the workspace, never for "
            "citing: " + ", ".join(f"{a:%Y-%m-%d}..{b:%Y-%m-%d}" for a, b in rep.synthetic_periods),
            soft_wrap=True,
        )
    if rep.period is None:
        out.print("no country has an IQB score yet (too few samples, or no data)")
    else:
        start, end = rep.period
        for title, rows in (
            (f"best {len(rep.best)}", rep.best),
            (f"worst {len(rep.worst)}", rep.worst),
        ):
            synthetic = " (SYNTHETIC)" if rep.period in rep.synthetic_periods else ""
            t = Table(
                title=f"{title} of {rep.scored_countries} countries by IQB score, "
                f"{start:%Y-%m-%d}..{end:%Y-%m-%d}{synthetic}",
                caption="p95 = what the best-served 5% get (download, upload: "
                "the high end; latency, loss: the low end); Mbit/s, ms, loss "
                "ratio; tests: min(download, upload) tests",
            )
            t.add_column("country", no_wrap=True, max_width=20, overflow="ellipsis")
            for col in ("score", "download", "upload", "latency", "loss", "tests"):
                t.add_column(col, justify="right", no_wrap=True, min_width=len(col))
            for c in rows:
                t.add_row(
                    f"{c.country_code} {c.country_name or ''}".strip(),
                    f"{c.iqb_score:.3f}",
                    _num(c.download_p95),
                    _num(c.upload_p95),
                    _num(c.latency_p95),
                    _num(c.loss_p95, ".4f"),
                    f"{c.samples:,}" if c.samples is not None else "-",
                )
            out.print(t)
    out.print(
        f"Open the database in the DuckDB shell:  {shell_command(rep.database)}",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        "  e.g.  select * from iqb_scores_by_country order by period_start desc, "
        "iqb_score desc limit 10;",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        "  any percentile, no rebuild:  select * from iqb_scores_all_percentiles_by_country "
        "where score_percentile = 50;",
        highlight=False,
        soft_wrap=True,
    )


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else f"{value:{fmt}}"


def _failure(exc: Exception, root: Path) -> typer.Exit:
    """The report's error; with no database under ``root`` (``iqb`` run from a sub-folder,
    such as dbt_project/), also the one that the Python API would find."""
    from extract.paths import ArtifactPaths, find_artifacts

    message = str(exc)
    found = find_artifacts()
    if not ArtifactPaths(root).database.is_file() and ArtifactPaths(found).database.is_file():
        message += f"; there is one under {found}: pass --artifacts {found}"
    return fail(message)


def _html_report(root: Path, out_dir: Path | None, drill_limit: int) -> None:
    from extract.paths import ArtifactPaths
    from extract.results.html.build import write_html_report
    from extract.results.report import ReportError, connected_file, database_state, open_database

    try:
        rep = write_html_report(root, out_dir, drill_limit=drill_limit)
        with open_database(ArtifactPaths(root).database) as con:
            state = database_state(con, connected_file(con))
    except ReportError as exc:
        raise _failure(exc, root) from None
    out.print(f"from {state.describe()}", highlight=False, soft_wrap=True)
    data = sum(n for name, n in rep.files.items() if name.startswith("data/"))
    out.print(
        f"wrote {rep.index} ({rep.periods} period(s), {rep.countries} countries; "
        f"{rep.total_bytes / 1e6:.1f} MB in {len(rep.files)} files, of which data "
        f"{data / 1e6:.1f} MB)",
        highlight=False,
    )
    out.print(f"open it with a browser: file://{rep.index}", highlight=False)
