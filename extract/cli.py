"""The ``iqb`` command: sample, extract, cache, sync, report.

Each sub-command is a thin shell over a module that does the work, so the same
logic is reachable from Python and from tests without a terminal.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from extract.cache.layout import ENV_ARTIFACTS, default_artifacts
from extract.cache.store import entry_state
from extract.matrix import ConfigError, Matrix, load_matrix
from extract.sample.generate import DEFAULT_ROWS

app = typer.Typer(help="IQB data workspace: M-Lab NDT measurements -> Parquet cache -> dbt.",
                  no_args_is_help=True, add_completion=False)
extract_app = typer.Typer(help="Run the query matrix into the Parquet cache.",
                          no_args_is_help=True)
cache_app = typer.Typer(help="Inspect and move the Parquet cache.", no_args_is_help=True)
app.add_typer(extract_app, name="extract")
app.add_typer(cache_app, name="cache")

out = Console()
err = Console(stderr=True)

ArtifactsOpt = Annotated[Path | None, typer.Option(
    "--artifacts", envvar=ENV_ARTIFACTS, show_envvar=True,
    help="Artifacts root (cache, raw sample, database). Default: ./artifacts.")]
ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", help="Pipeline matrix (upstream pipeline.yaml format).")]


def artifacts_root(value: Path | None) -> Path:
    return value.absolute() if value else default_artifacts()


def load_or_exit(config: Path) -> Matrix:
    """Load the matrix or print every problem and exit 2, before anything is written."""
    try:
        return load_matrix(config)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@app.command()
def sample(
    config: ConfigOpt = Path("pipeline.demo.yaml"),
    months: Annotated[str | None, typer.Option(
        help="Months to write, 'YYYY-MM..YYYY-MM' (default: every month of --config).")] = None,
    rows: Annotated[int, typer.Option(
        help="Download rows per month (uploads follow the real upload/download ratio).",
        min=1000)] = DEFAULT_ROWS,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Write a synthetic raw sample calibrated to M-Lab's real October 2024 data."""
    from extract.matrix import parse_month_range
    from extract.sample.generate import month_range, write_sample

    if months:
        periods, problems = parse_month_range(months, "--months")
        if problems:
            raise fail("; ".join(problems), 2)
        wanted = [p.start for p in periods]
    else:
        matrix = load_or_exit(config)
        wanted = sorted({m for p in matrix.periods
                         for m in month_range(p.start, p.end) if m < p.end})
    root = artifacts_root(artifacts)
    with err.status(f"writing {len(wanted)} month(s) of synthetic measurements..."):
        written = write_sample(root, wanted, rows=rows, seed=seed)
    for path, n in written:
        out.print(f"{n:>10,} rows  {path}")


@extract_app.command("run")
def extract_run(
    config: ConfigOpt = Path("pipeline.yaml"),
    engine: Annotated[str, typer.Option(help="duckdb (embedded, local raw Parquet) or "
                                             "bigquery (production, costs money).")] = "duckdb",
    jobs: Annotated[int, typer.Option(help="Entries run at once.", min=1, max=64)] = 2,
    force: Annotated[bool, typer.Option(help="Re-run entries that are already cached.")] = False,
    refresh_stale: Annotated[bool, typer.Option(
        help="Re-run entries written by an older version of their template.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Say what would run; run nothing.")] = False,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Run every entry of the matrix that is not cached yet; skip the rest."""
    from extract.engines import EngineError, make_engine
    from extract.runner import Outcome, RunOptions, run_matrix

    matrix = load_or_exit(config)
    root = artifacts_root(artifacts)
    entries = matrix.entries()
    try:
        eng = make_engine(engine, artifacts=root) if engine == "duckdb" else make_engine(engine)
    except EngineError as exc:
        raise fail(str(exc), 2) from None
    opts = RunOptions(force=force, refresh_stale=refresh_stale, dry_run=dry_run, jobs=jobs)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, transient=False)
    with progress:
        task = progress.add_task(f"extract ({engine})", total=len(entries))

        def on_done(report) -> None:  # type: ignore[no-untyped-def]
            progress.advance(task)
            if report.outcome == Outcome.FAILED:
                progress.console.print(f"[red]failed[/] {report.entry.label}: {report.error}",
                                       highlight=False)

        summary = run_matrix(entries, eng, root, opts, on_done=on_done)
    _print_summary(summary, dry_run)
    if summary.failed:
        raise typer.Exit(1)


def _print_summary(summary, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    from extract.runner import Outcome

    table = Table(title="dry run: nothing was executed" if dry_run else "extract summary")
    for col in ("outcome", "entries", "rows", "MB", "seconds"):
        table.add_column(col, justify="left" if col == "outcome" else "right")
    for outcome in Outcome:
        reports = [r for r in summary.reports if r.outcome == outcome]
        if reports:
            table.add_row(outcome.value, str(len(reports)), f"{sum(r.rows for r in reports):,}",
                          f"{sum(r.bytes for r in reports) / 1e6:.1f}",
                          f"{sum(r.seconds for r in reports):.1f}")
    out.print(table)
    stale = summary.count(Outcome.STALE)
    if stale:
        out.print(f"{stale} entr{'y is' if stale == 1 else 'ies are'} stale (written by an "
                  "older template): re-run them with --refresh-stale")
    reasons = Counter(r.error for r in summary.failed)
    for reason, n in reasons.most_common():
        err.print(f"[red]{n} failed:[/] {reason}", highlight=False)
    if dry_run:
        for r in summary.reports:
            if r.outcome == Outcome.PENDING:
                out.print(f"would run  {r.entry.label}", highlight=False)


@cache_app.command("status")
def cache_status(
    config: ConfigOpt = Path("pipeline.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Every entry of the matrix as present, missing or stale."""
    matrix = load_or_exit(config)
    root = artifacts_root(artifacts)
    states = [(e, entry_state(e, root)) for e in matrix.entries()]
    counts = Counter(s.value for _, s in states)
    if as_json:
        json.dump({"artifacts": str(root), "counts": counts,
                   "entries": [{"key": e.key, "state": s.value} for e, s in states]},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    table = Table(title=f"cache under {root}")
    table.add_column("entry")
    table.add_column("state")
    colour = {"present": "green", "missing": "yellow", "stale": "red"}
    for e, s in states:
        table.add_row(e.key, f"[{colour[s.value]}]{s.value}[/]")
    out.print(table)
    out.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


def main() -> None:
    app()


if __name__ == "__main__":
    main()

