"""``iqb extract run`` (and upstream's name for it, ``iqb pipeline run``).

The command has many options; typer needs each as a parameter, but nothing
below the command should. It groups them once into the frozen option objects
here, and the helpers take those: adding a BigQuery setting touches
``BigQueryOptions`` and the one place the engine is built, not every signature
in between. The work itself is extract/extraction/runner.py; what is printed afterwards is
extract/cli/extract_summary.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID

from extract import defaults
from extract.cli.common import artifacts_root, disk_errors, err, fail, load_or_exit, progress_bar
from extract.cli.extract_summary import print_estimate, print_summary
from extract.cli.options import AllowHttpOpt, ArtifactsOpt, ConfigOpt, JobsEntriesOpt

if TYPE_CHECKING:
    from collections.abc import Callable

    from extract.extraction.engines import Engine, Query
    from extract.sync.pull import ManifestRemoteCache

# Points --engine bigquery at a local BigQuery API emulator (host:port or URL):
# anonymous credentials, REST reads. For tests and demos only, hence not an
# option in --help; read here and nowhere else (docs/bigquery.md).
ENV_EMULATOR = "BIGQUERY_EMULATOR_HOST"
BQ_PANEL = "BigQuery engine (--engine bigquery)"


@dataclass(frozen=True)
class ExtractOptions:
    """How the matrix is run, whatever the engine."""

    engine: str
    jobs: int
    force: bool
    refresh_stale: bool
    dry_run: bool
    memory_gb: float  # the embedded engine's budget, split between the jobs


@dataclass(frozen=True)
class RemoteOptions:
    """Where entries may be pulled from before an engine computes them."""

    manifest: str | None
    ignored: bool  # --no-remote
    allow_http: bool


@dataclass(frozen=True)
class BigQueryOptions:
    """What --engine bigquery is built from: the options in its help panel."""

    project: str | None
    source_table: str | None
    maximum_bytes_billed: str
    price_per_tib: float
    location: str | None
    storage_api: bool
    job_timeout: float
    emulator: str | None  # from ENV_EMULATOR only


@disk_errors
def extract_run(
    config: ConfigOpt = Path("pipeline.yaml"),
    engine: Annotated[
        str,
        typer.Option(
            help="duckdb (embedded, local raw Parquet) or bigquery (production, costs money)."
        ),
    ] = "duckdb",
    jobs: JobsEntriesOpt = defaults.LOCAL_JOBS,
    force: Annotated[bool, typer.Option(help="Re-run entries that are already cached.")] = False,
    refresh_stale: Annotated[
        bool, typer.Option(help="Re-run entries written by an older version of their template.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Say what would run; run nothing.")] = False,
    memory_gb: Annotated[
        float,
        typer.Option(
            "--memory-gb",
            envvar="IQB_MEMORY_GB",
            show_envvar=True,
            min=0.1,
            help="Memory the embedded engine may use per query, in GB: a month is computed in "
            "chunks of whole countries sized to it, so memory does not grow with the "
            "month (quantiles stay exact).",
        ),
    ] = defaults.MEMORY_GB,
    remote: Annotated[
        str | None,
        typer.Option(
            envvar="IQB_REMOTE_MANIFEST",
            show_envvar=True,
            help="Manifest (https://, gs:// or file) to pull entries from before running "
            "the engine.",
        ),
    ] = None,
    no_remote: Annotated[
        bool, typer.Option("--no-remote", help="Ignore --remote / IQB_REMOTE_MANIFEST.")
    ] = False,
    allow_http: AllowHttpOpt = False,
    artifacts: ArtifactsOpt = None,
    project: Annotated[
        str | None,
        typer.Option(
            envvar="IQB_BQ_PROJECT",
            show_envvar=True,
            rich_help_panel=BQ_PANEL,
            help="Billing project: jobs run and are billed there (default: the ADC project).",
        ),
    ] = None,
    source_table: Annotated[
        str | None,
        typer.Option(
            envvar="IQB_BQ_SOURCE_TABLES",
            show_envvar=True,
            rich_help_panel=BQ_PANEL,
            help="Read other measurement tables: "
            "downloads=PROJECT.DATASET.TABLE,uploads=PROJECT.DATASET.TABLE.",
        ),
    ] = None,
    maximum_bytes_billed: Annotated[
        str,
        typer.Option(
            envvar="IQB_BQ_MAXIMUM_BYTES_BILLED",
            show_envvar=True,
            rich_help_panel=BQ_PANEL,
            help="Cap per job (e.g. 50GiB, 1TiB): a job that would bill more fails at no cost.",
        ),
    ] = defaults.MAXIMUM_BYTES_BILLED,
    price_per_tib: Annotated[
        float,
        typer.Option(
            envvar="IQB_BQ_PRICE_PER_TIB",
            show_envvar=True,
            rich_help_panel=BQ_PANEL,
            min=0,
            help="On-demand price per TiB scanned (USD), for the --dry-run estimate.",
        ),
    ] = defaults.PRICE_PER_TIB_USD,
    location: Annotated[
        str | None,
        typer.Option(
            envvar="IQB_BQ_LOCATION",
            show_envvar=True,
            rich_help_panel=BQ_PANEL,
            help="Job location (default: where the tables are).",
        ),
    ] = None,
    storage_api: Annotated[
        bool,
        typer.Option(
            rich_help_panel=BQ_PANEL,
            help="Read results through the BigQuery Storage Read API (else REST).",
        ),
    ] = True,
    job_timeout: Annotated[
        float,
        typer.Option(
            rich_help_panel=BQ_PANEL,
            min=1,
            help="Seconds to wait for one job before cancelling it.",
        ),
    ] = defaults.JOB_TIMEOUT_S,
) -> None:
    """Run every entry of the matrix that is not cached yet; skip the rest.

    Order per entry: local cache, then the remote manifest (if configured, not
    with --force or --no-remote), then the engine. Corrupt entries are re-made
    without --force; with --engine bigquery, entries made from synthetic data
    count as not cached. A period without raw data is "no input" (nothing is
    written, exit 1). With --engine bigquery, start with --dry-run: it prices
    every pending entry (0 bytes for what the remote holds) and runs nothing.
    """
    run(
        config,
        artifacts,
        ExtractOptions(
            engine=engine,
            jobs=jobs,
            force=force,
            refresh_stale=refresh_stale,
            dry_run=dry_run,
            memory_gb=memory_gb,
        ),
        RemoteOptions(manifest=remote, ignored=no_remote, allow_http=allow_http),
        BigQueryOptions(
            project=project,
            source_table=source_table,
            maximum_bytes_billed=maximum_bytes_billed,
            price_per_tib=price_per_tib,
            location=location,
            storage_api=storage_api,
            job_timeout=job_timeout,
            emulator=os.environ.get(ENV_EMULATOR) or None,
        ),
    )


def run(
    config: Path,
    artifacts: Path | None,
    settings: ExtractOptions,
    remote: RemoteOptions,
    bq: BigQueryOptions,
) -> None:
    from extract.extraction.engines import EngineError
    from extract.extraction.runner import (
        LOCAL_ENGINES,
        NO_REMOTE_HINT,
        EntryReport,
        Outcome,
        RunOptions,
        run_matrix,
    )

    matrix = load_or_exit(config)
    root = artifacts_root(artifacts)
    entries = matrix.entries()
    progress = progress_bar()
    try:
        eng, cap = _engine(settings, bq, root, progress)
    except EngineError as exc:
        raise fail(str(exc), 2) from None
    remote_cache = _remote_cache(settings, remote, root)
    opts = RunOptions(
        force=settings.force,
        refresh_stale=settings.refresh_stale,
        dry_run=settings.dry_run,
        jobs=settings.jobs,
        remote=remote_cache,
    )
    with progress:
        task = progress.add_task(f"extract ({settings.engine})", total=len(entries))

        def on_done(report: EntryReport) -> None:
            progress.advance(task)
            if report.outcome == Outcome.FAILED and not report.fatal:
                progress.console.print(
                    f"[red]failed[/] {report.entry.label}: {escape(report.error)}", highlight=False
                )

        try:
            summary = run_matrix(entries, eng, root, opts, on_done=on_done)
        finally:
            if remote_cache is not None:
                remote_cache.close()
    print_summary(summary, settings.dry_run)
    if opts.remote_problem and settings.engine in LOCAL_ENGINES:
        n = opts.remote_fallbacks
        err.print(
            f"[yellow]remote not used[/] for {n} entr{'y' if n == 1 else 'ies'}: "
            f"{escape(opts.remote_problem)}. They were "
            f"{'planned' if settings.dry_run else 'computed'} by the local engine from the raw "
            f"data instead; {NO_REMOTE_HINT}.",
            highlight=False,
        )
    if settings.dry_run and settings.engine == "bigquery":
        print_estimate(summary, bq.price_per_tib, cap)
    if summary.fatal is not None:
        untried = len(entries) - len(summary.reports)
        raise fail(
            f"{summary.fatal.error}; the run stopped there ({untried} "
            f"entr{'y' if untried == 1 else 'ies'} not tried)"
        )
    if summary.failed or summary.no_input:
        raise typer.Exit(1)


def _engine(
    settings: ExtractOptions, bq: BigQueryOptions, root: Path, progress: Progress
) -> tuple[Engine, int | None]:
    """The engine, and BigQuery's per-job byte cap (None for the others); EngineError if not."""
    from extract.extraction.engines import make_engine

    if settings.engine == "bigquery":
        from extract.extraction.engines.bigquery import parse_bytes, parse_source_tables

        cap = parse_bytes(bq.maximum_bytes_billed)
        eng = make_engine(
            "bigquery",
            project=bq.project,
            maximum_bytes_billed=cap,
            location=bq.location,
            source_tables=parse_source_tables(bq.source_table) if bq.source_table else None,
            storage_api=bq.storage_api,
            job_timeout=bq.job_timeout,
            emulator=bq.emulator,
            on_status=_job_status(progress),
        )
        return eng, cap
    if settings.engine == "duckdb":
        # Split the cores between concurrent queries instead of oversubscribing
        # them: same speed, less memory (docs/performance.md).
        return make_engine(
            "duckdb",
            artifacts=root,
            threads=max(1, (os.cpu_count() or 1) // settings.jobs),
            memory_limit_gb=settings.memory_gb / settings.jobs,
        ), None
    return make_engine(settings.engine), None  # names the engines there are


def _remote_cache(
    settings: ExtractOptions, remote: RemoteOptions, root: Path
) -> ManifestRemoteCache | None:
    from extract.sync.pull import ManifestRemoteCache

    if remote.ignored or settings.force or not remote.manifest:
        return None
    return ManifestRemoteCache(
        remote.manifest,
        root,
        allow_http=remote.allow_http,
        accept_synthetic=settings.engine != "bigquery",
    )


def _job_status(progress: Progress) -> Callable[[Query, str | None], None]:
    """A line per running BigQuery job under the bar; called from the worker threads."""
    import threading

    lines: dict[tuple[str, object, object], TaskID] = {}
    lock = threading.Lock()

    def on_status(query: Query, message: str | None) -> None:
        key = (query.dataset, query.start, query.end)
        with lock:
            if message is None:
                if key in lines:
                    progress.remove_task(lines.pop(key))
                return
            if key not in lines:
                lines[key] = progress.add_task("", total=None)
            progress.update(lines[key], description=f"  {query.dataset} {query.start}: {message}")

    return on_status


extract_app = typer.Typer(help="Run the query matrix into the Parquet cache.", no_args_is_help=True)
extract_app.command("run")(extract_run)
# Upstream's name for the extract step (m-lab/iqb: `iqb pipeline run`): the same command.
pipeline_app = typer.Typer(help="Upstream's name for `iqb extract`.", no_args_is_help=True)
pipeline_app.command(
    "run", help="Same as `iqb extract run` (upstream's name for it). " + (extract_run.__doc__ or "")
)(extract_run)
