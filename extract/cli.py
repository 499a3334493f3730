"""The ``iqb`` command: sample, extract, cache, sync, report.

Each sub-command is a thin shell over a module that does the work, so the same
logic is reachable from Python and from tests without a terminal.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from extract.cache.layout import ENV_ARTIFACTS, default_artifacts
from extract.engines import DEFAULT_MEMORY_LIMIT_GB
from extract.matrix import ConfigError, Matrix, load_matrix
from extract.sample.generate import DEFAULT_ROWS

app = typer.Typer(
    help="IQB data workspace: M-Lab NDT measurements -> Parquet cache -> dbt.",
    no_args_is_help=True,
    add_completion=False,
)
extract_app = typer.Typer(help="Run the query matrix into the Parquet cache.", no_args_is_help=True)
cache_app = typer.Typer(help="Inspect and move the Parquet cache.", no_args_is_help=True)
app.add_typer(extract_app, name="extract")
app.add_typer(cache_app, name="cache")
sync_app = typer.Typer(
    help="Mirror the artifacts to a GCS bucket (see `iqb cache pull`).", no_args_is_help=True
)
app.add_typer(sync_app, name="sync")


class RedactingConsole(Console):
    """A console that never prints URL credentials or tokens (see extract/sync/redact.py)."""

    def print(self, *objects: object, **kwargs: object) -> None:  # type: ignore[override]
        from extract.sync.redact import redact

        super().print(*(redact(o) if isinstance(o, str) else o for o in objects), **kwargs)  # type: ignore[arg-type]


# soft_wrap: messages keep whole lines (paths, reasons) when piped or in CI logs,
# instead of being cut at 80 columns; tables still fit the terminal.
out = RedactingConsole(soft_wrap=True)
err = RedactingConsole(stderr=True, soft_wrap=True)
P = ParamSpec("P")

ArtifactsOpt = Annotated[
    Path | None,
    typer.Option(
        "--artifacts",
        envvar=ENV_ARTIFACTS,
        show_envvar=True,
        help="Artifacts root (cache, raw sample, database). Default: ./artifacts.",
    ),
]
BQ_PANEL = "BigQuery engine (--engine bigquery)"
ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Pipeline matrix (upstream pipeline.yaml format).")
]
# Options shared by the sync commands (issue 5).
AllowHttpOpt = Annotated[
    bool,
    typer.Option(
        help="Also read plain http:// URLs (only on a trusted network, e.g. loopback tests)."
    ),
]
DatasetOpt = Annotated[
    list[str] | None,
    typer.Option("--dataset", help="Only this dataset (repeatable), e.g. downloads_by_country."),
]
GranularityOpt = Annotated[
    list[str] | None,
    typer.Option("--granularity", help="Only this granularity (repeatable), e.g. country_asn."),
]
StartOpt = Annotated[
    str | None,
    typer.Option(help="Only periods starting on or after this day (YYYY-MM or YYYY-MM-DD)."),
]
EndOpt = Annotated[
    str | None,
    typer.Option(
        help="Only periods ending on or before this day (exclusive end, as in pipeline.yaml)."
    ),
]
JobsSyncOpt = Annotated[
    int, typer.Option("--jobs", "-j", help="Files transferred at once.", min=1, max=64)
]
TimeoutOpt = Annotated[
    float, typer.Option(help="Seconds to wait for a server response, per request.", min=0.1)
]
RetryOpt = Annotated[
    float,
    typer.Option(help="Seconds to keep retrying a failing request (exponential backoff).", min=0),
]
ManifestArg = Annotated[
    str,
    typer.Argument(
        help="Manifest: https:// or gs:// URL, a file, or `mlab` (M-Lab's published cache, "
        "shipped with iqb)."
    ),
]
# Retention of the kept states (issue 14); applied by `sync push --delete`.
KeepDaysOpt = Annotated[
    int,
    typer.Option(
        help="With --delete: keep published states (state/manifests/) this many days, and the "
        "objects they name.",
        min=0,
    ),
]
KeepLastOpt = Annotated[
    int, typer.Option(help="With --delete: always keep this many newest published states.", min=1)
]
EnvFileOpt = Annotated[
    Path,
    typer.Option(
        help="Read GCP_PROJECT, GCP_BUCKET (and other settings) from this file if it exists; "
        "the environment wins."
    ),
]


def artifacts_root(value: Path | None) -> Path:
    return value.absolute() if value else default_artifacts()


def load_or_exit(config: Path) -> Matrix:
    """Load the matrix or print every problem and exit 2, before anything is written."""
    try:
        return load_matrix(config)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print("[bold red]error:[/] ", end="", highlight=False)
    err.print(message, markup=False, highlight=False)
    return typer.Exit(code)


def disk_errors(command: Callable[P, None]) -> Callable[P, None]:
    """A read-only or full disk ends the command with one line naming the file, exit 1.

    Anything the command writes goes through temp files that are removed on
    failure, so nothing partial is left visible.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        from extract.runner import disk_problem

        try:
            command(*args, **kwargs)
        except OSError as exc:
            problem = disk_problem(exc)
            if problem is None and exc.errno != errno.EACCES:
                raise
            raise fail(problem or f"cannot write {exc.filename}: {exc.strerror}") from None

    return wrapper


@app.command()
@disk_errors
def sample(
    config: ConfigOpt = Path("pipeline.demo.yaml"),
    months: Annotated[
        str | None,
        typer.Option(
            help="Months to write, 'YYYY-MM..YYYY-MM' (default: every month of --config)."
        ),
    ] = None,
    rows: Annotated[
        int,
        typer.Option(
            help="Download rows per month (uploads follow the real upload/download ratio).",
            min=1000,
        ),
    ] = DEFAULT_ROWS,
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
        wanted = sorted(
            {m for p in matrix.periods for m in month_range(p.start, p.end) if m < p.end}
        )
    root = artifacts_root(artifacts)
    with err.status(f"writing {len(wanted)} month(s) of synthetic measurements..."):
        written = write_sample(root, wanted, rows=rows, seed=seed)
    for path, n in written:
        out.print(f"{n:>10,} rows  {path}")


@extract_app.command("run")
@disk_errors
def extract_run(
    config: ConfigOpt = Path("pipeline.yaml"),
    engine: Annotated[
        str,
        typer.Option(
            help="duckdb (embedded, local raw Parquet) or bigquery (production, costs money)."
        ),
    ] = "duckdb",
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", help="Entries run at once.", min=1, max=64)
    ] = 2,
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
    ] = DEFAULT_MEMORY_LIMIT_GB,
    remote: Annotated[
        str | None,
        typer.Option(
            envvar="IQB_REMOTE_MANIFEST",
            show_envvar=True,
            help="Manifest (https://, gs:// or file) to pull entries from before running "
            "the engine.",
        ),
    ] = None,
    no_remote: Annotated[bool, typer.Option(help="Ignore --remote / IQB_REMOTE_MANIFEST.")] = False,
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
    ] = "50GiB",
    price_per_tib: Annotated[
        float,
        typer.Option(
            envvar="IQB_BQ_PRICE_PER_TIB",
            show_envvar=True,
            rich_help_panel=BQ_PANEL,
            min=0,
            help="On-demand price per TiB scanned (USD), for the --dry-run estimate.",
        ),
    ] = 6.25,
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
    ] = 3600.0,
    emulator: Annotated[
        str | None,
        typer.Option(
            envvar="BIGQUERY_EMULATOR_HOST",
            show_envvar=True,
            rich_help_panel=BQ_PANEL,
            help="A local BigQuery API emulator (host:port or URL), anonymous and over REST; "
            "for tests and demos.",
        ),
    ] = None,
) -> None:
    """Run every entry of the matrix that is not cached yet; skip the rest.

    Order per entry: local cache, then the remote manifest (if configured, not
    with --force or --no-remote), then the engine. Corrupt entries are re-made
    without --force; with --engine bigquery, entries made from synthetic data
    count as not cached. A period without raw data is "no input" (nothing is
    written, exit 1). With --engine bigquery, start with --dry-run: it prices
    every pending entry (0 bytes for what the remote holds) and runs nothing.
    """
    from extract.engines import EngineError, make_engine
    from extract.runner import Outcome, RunOptions, run_matrix

    matrix = load_or_exit(config)
    root = artifacts_root(artifacts)
    entries = matrix.entries()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    cap = None
    try:
        if engine == "bigquery":
            from extract.engines.bigquery import parse_bytes, parse_source_tables

            cap = parse_bytes(maximum_bytes_billed)
            eng = make_engine(
                engine,
                project=project,
                maximum_bytes_billed=cap,
                location=location,
                source_tables=parse_source_tables(source_table) if source_table else None,
                storage_api=storage_api,
                job_timeout=job_timeout,
                emulator=emulator,
                on_status=_job_status(progress),
            )
        else:
            # Split the cores between concurrent queries instead of oversubscribing
            # them: same speed, less memory (docs/performance.md).
            eng = (
                make_engine(
                    engine,
                    artifacts=root,
                    threads=max(1, (os.cpu_count() or 1) // jobs),
                    memory_limit_gb=memory_gb / jobs,
                )
                if engine == "duckdb"
                else make_engine(engine)
            )
    except EngineError as exc:
        raise fail(str(exc), 2) from None
    from extract.sync.pull import ManifestRemoteCache

    remote_cache = (
        None
        if (no_remote or force or not remote)
        else ManifestRemoteCache(
            remote, root, allow_http=allow_http, accept_synthetic=engine != "bigquery"
        )
    )
    opts = RunOptions(
        force=force, refresh_stale=refresh_stale, dry_run=dry_run, jobs=jobs, remote=remote_cache
    )
    with progress:
        task = progress.add_task(f"extract ({engine})", total=len(entries))

        def on_done(report) -> None:  # type: ignore[no-untyped-def]
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
    _print_summary(summary, dry_run)
    if dry_run and engine == "bigquery":
        _print_estimate(summary, price_per_tib, cap)
    if summary.fatal is not None:
        untried = len(entries) - len(summary.reports)
        raise fail(
            f"{summary.fatal.error}; the run stopped there ({untried} "
            f"entr{'y' if untried == 1 else 'ies'} not tried)"
        )
    if summary.failed or summary.no_input:
        raise typer.Exit(1)


def _job_status(progress: Progress):  # type: ignore[no-untyped-def]
    """A line per running BigQuery job under the bar; called from the worker threads."""
    import threading

    lines: dict[tuple[str, object, object], TaskID] = {}
    lock = threading.Lock()

    def on_status(query, message: str | None) -> None:  # type: ignore[no-untyped-def]
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


def _print_estimate(summary, price_per_tib: float, cap: int | None) -> None:  # type: ignore[no-untyped-def]
    """Bytes each pending entry would scan, the total, and its on-demand price."""
    from extract.engines.bigquery import format_bytes, on_demand_cost
    from extract.runner import Outcome

    priced = [r for r in summary.reports if r.scan_bytes is not None]
    if not priced:
        out.print("nothing to price: no BigQuery job would run")
        return
    over = sum(cap is not None and r.scan_bytes > cap for r in priced)
    table = Table(title="BigQuery dry run: bytes to be scanned")
    table.add_column("entry")
    table.add_column("scan", justify="right")
    table.add_column("over cap")
    for r in priced:
        pulled = r.outcome == Outcome.WOULD_PULL
        table.add_row(
            r.entry.label + (" (in the remote: pulled, no query)" if pulled else ""),
            format_bytes(r.scan_bytes),
            "[red]yes[/]" if cap is not None and r.scan_bytes > cap else "",
        )
    out.print(table)
    total = sum(r.scan_bytes for r in priced)
    queries = sum(r.outcome == Outcome.PENDING for r in priced)
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


def _print_summary(summary, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    from extract.runner import Outcome

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
    by_period: dict[str, list[str]] = {}
    for r in summary.no_input:
        by_period.setdefault(f"{r.entry.start:%Y-%m-%d}..{r.entry.end:%Y-%m-%d}", []).append(
            r.entry.dataset.name
        )
    if by_period:
        periods = sorted(by_period)
        shown = ", ".join(periods[:6]) + (
            f" and {len(periods) - 6} more" if len(periods) > 6 else ""
        )
        err.print(
            f"[yellow]no input[/] for {len(periods)} period(s): {shown}; nothing was "
            "written for them (no raw data there: `iqb sample --months A..B` makes "
            "synthetic data, or use --engine bigquery)",
            highlight=False,
        )
        reasons = sorted({r.error for r in summary.no_input if "expected Parquet" in r.error})
        for reason in reasons[:3]:  # no raw folder at all: say where it was looked for
            err.print(f"  {reason}", markup=False, highlight=False)
    stale = summary.count(Outcome.STALE)
    if stale:
        out.print(
            f"{stale} entr{'y is' if stale == 1 else 'ies are'} stale (written by an "
            "older template): re-run them with --refresh-stale"
        )
    # Each failure was printed as it happened; here, one line per distinct reason.
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
    if dry_run:
        for r in summary.reports:
            if r.outcome == Outcome.PENDING and r.scan_bytes is None:  # priced ones: a table
                out.print(f"would run  {r.entry.label}", highlight=False)


@cache_app.command("status")
@disk_errors
def cache_status(
    config: ConfigOpt = Path("pipeline.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    manifest: Annotated[
        str | None,
        typer.Option(
            help="Compare local files with this manifest (https://, gs:// or file) instead of "
            "listing the matrix."
        ),
    ] = None,
    dataset: DatasetOpt = None,
    granularity: GranularityOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    allow_http: AllowHttpOpt = False,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="With --manifest: list the files that are the same too (--json always "
            "lists every file).",
        ),
    ] = False,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Every entry of the matrix: present, unverified, missing, stale or corrupt (and why).

    present: the data file matches the size and SHA-256 its stats.json records
    (or a pull / verify recorded); unverified: upstream's stats.json without a
    hash, file readable; corrupt: anything else, re-made by `iqb extract run`.
    With --manifest: the files that differ (changed, only-local, only-remote),
    then the count per state; --all lists the same ones too.
    """
    from extract.cache.hashindex import HashIndex
    from extract.cache.state import entry_status

    if manifest:
        _status_against_manifest(
            manifest,
            as_json,
            _selection(dataset, granularity, start, end),
            allow_http,
            artifacts_root(artifacts),
            show_all,
        )
        return
    matrix = load_or_exit(config)
    root = artifacts_root(artifacts)
    index = HashIndex(root)
    states = [entry_status(e, root, index) for e in matrix.entries()]
    index.save()
    counts = Counter(s.state.value for s in states)
    if as_json:
        json.dump(
            {
                "artifacts": str(root),
                "counts": counts,
                "entries": [
                    {
                        "key": s.entry.key,
                        "state": s.state.value,
                        "reason": s.reason or None,
                        "source": s.source_kind or None,
                    }
                    for s in states
                ],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return
    table = Table(title=f"cache under {root}")
    table.add_column("entry", overflow="fold")
    table.add_column("state")
    table.add_column("source")
    table.add_column("reason", overflow="fold")
    colour = {
        "present": "green",
        "unverified": "cyan",
        "missing": "yellow",
        "stale": "red",
        "corrupt": "bold red",
    }
    for s in states:
        table.add_row(
            s.entry.key,
            f"[{colour[s.state.value]}]{s.state.value}[/]",
            s.source_kind,
            escape(s.reason) if s.state != "unverified" else "no SHA-256 recorded yet",
        )
    out.print(table)
    out.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    if counts.get("corrupt"):
        out.print("corrupt entries are re-made by `iqb extract run` (no --force needed)")
    if counts.get("unverified"):
        out.print(
            "unverified entries are usable; `iqb cache verify` reads them and records their hash"
        )


# ---------------------------------------------------------------------------
# Distribute: sync push, cache pull / verify / usage, remote before query (issue 5).
# The work is in extract/sync/; these functions only parse options and print.
# ---------------------------------------------------------------------------


def _selection(
    dataset: list[str] | None, granularity: list[str] | None, start: str | None, end: str | None
):  # type: ignore[no-untyped-def]
    from extract.sync.compare import Selection

    try:
        return Selection.build(dataset, granularity, start, end)
    except ValueError as exc:
        raise fail(str(exc), 2) from None


def _load_manifest(
    source: str, allow_http: bool, timeout: float = 60.0, retry_deadline: float = 30.0
):  # type: ignore[no-untyped-def]
    """(manifest, source, transfer) for a manifest argument, or exit 2 with the reason."""
    from extract.manifests import resolve_manifest
    from extract.sync.manifest import ManifestError
    from extract.sync.remote import SyncError, Transfer, load_manifest, source_for

    source = resolve_manifest(source)
    transfer = Transfer(read_timeout=timeout, retry_deadline=retry_deadline)
    reader = source_for(source, transfer, allow_http)
    try:
        return load_manifest(source, reader), reader, transfer
    except (SyncError, ManifestError) as exc:
        raise fail(str(exc), 2) from None


def _transfer_progress(label: str) -> tuple[Progress, object]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    return progress, progress.add_task(label, total=None)


def _status_against_manifest(
    source: str, as_json: bool, selection, allow_http: bool, root: Path, show_all: bool
) -> None:  # type: ignore[no-untyped-def]
    """Print how local files compare with the manifest.

    The table lists only the files that differ unless ``show_all``: in a synced
    workspace nearly all of 4,900 files are the same, and drawing them took
    half the command's time to show nothing actionable. The counts always
    cover every file, and --json always lists every file.
    """
    from extract.cache.hashindex import HashIndex
    from extract.sync.compare import FileState, compare

    manifest, _, _ = _load_manifest(source, allow_http)
    index = HashIndex(root)
    diffs = compare(manifest, root, index, selection)
    index.save()
    counts = Counter(d.state.value for d in diffs)
    if as_json:
        from extract.sync.redact import redact

        json.dump(
            {
                "artifacts": str(root),
                "manifest": redact(source),
                "counts": counts,
                "files": [
                    {
                        "key": d.key,
                        "state": d.state.value,
                        "local_sha256": d.local_sha256,
                        "remote_sha256": d.remote.sha256 if d.remote else None,
                        "local_size": d.local_size,
                        "remote_size": d.remote.size if d.remote else None,
                    }
                    for d in diffs
                ],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return
    listed = diffs if show_all else [d for d in diffs if d.state != FileState.SAME]
    if listed:
        from extract.sync.redact import redact

        table = Table(title=redact(f"{root} against {source}"))
        table.add_column("file", overflow="fold")  # a key cut short is no use to act on
        table.add_column("state")
        colour = {"same": "green", "only-remote": "cyan", "only-local": "yellow", "changed": "red"}
        for d in listed:
            table.add_row(d.key, f"[{colour[d.state.value]}]{d.state.value}[/]")
        out.print(table)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no files"
    out.print(f"{summary} (--all lists the same ones too)" if len(listed) < len(diffs) else summary)


@cache_app.command("pull")
@disk_errors
def cache_pull(
    manifest: ManifestArg,
    dataset: DatasetOpt = None,
    granularity: GranularityOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    jobs: JobsSyncOpt = 8,
    force: Annotated[
        bool, typer.Option(help="Also replace local files that differ from the manifest.")
    ] = False,
    allow_http: AllowHttpOpt = False,
    timeout: TimeoutOpt = 60.0,
    retry_deadline: RetryOpt = 30.0,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Download the (selected) files of a manifest that are missing here, verified by SHA256."""
    from extract.sync.pull import pull
    from extract.sync.remote import SyncError

    selection = _selection(dataset, granularity, start, end)
    root = artifacts_root(artifacts)
    loaded, reader, transfer = _load_manifest(manifest, allow_http, timeout, retry_deadline)
    progress, task = _transfer_progress("pull")
    try:
        with progress:
            report = pull(
                root,
                loaded,
                reader,
                transfer,
                selection=selection,
                jobs=jobs,
                force=force,
                refused=reader.problem,
                on_done=lambda _key: progress.advance(task),
            )  # type: ignore[arg-type]
    except SyncError as exc:
        raise fail(str(exc), 2) from None
    out.print(
        f"downloaded {len(report.downloaded)} file(s), {report.bytes / 1e6:.1f} MB; "
        f"{report.same} already here",
        highlight=False,
    )
    if report.kept:
        out.print(
            f"kept {len(report.kept)} local file(s) that differ from the manifest "
            "(--force replaces them; `iqb cache status --manifest` lists them)"
        )
    if report.log:
        out.print(f"log: {report.log}", highlight=False)
    for key, reason in report.failures:
        err.print(f"[red]failed[/] {escape(key)}: {escape(reason)}", highlight=False)
    if report.failures:
        raise fail(
            f"{len(report.failures)} file(s) failed; run the same pull again to "
            "resume (finished files are kept)"
        )


@cache_app.command("verify")
@disk_errors
def cache_verify(
    manifest: Annotated[
        str | None,
        typer.Argument(
            help="Manifest (URL or file) to check the files against. Default: check every "
            "cache entry against its own stats.json."
        ),
    ] = None,
    dataset: DatasetOpt = None,
    granularity: GranularityOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    jobs: JobsSyncOpt = 4,
    allow_http: AllowHttpOpt = False,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Re-read every byte: against a manifest, or each entry against its stats.json.

    Without a manifest, upstream-format entries (no hash in stats.json) that
    read as the dataset's Parquet get their hash recorded: present from then
    on. Exit 1 on a mismatch or a corrupt entry.
    """
    from extract.sync.audit import verify

    root = artifacts_root(artifacts)
    selection = _selection(dataset, granularity, start, end)
    if manifest is None:
        _verify_against_stats(root, selection)
        return
    loaded, _, _ = _load_manifest(manifest, allow_http)
    report = verify(root, loaded, selection, jobs)
    for key, local, listed in report.mismatched:
        err.print(
            f"[red]mismatch[/] {key}: local sha256 {local}, manifest {listed}", highlight=False
        )
    out.print(
        f"{report.ok} ok, {len(report.mismatched)} mismatched, {report.missing} listed "
        f"but not here, {report.unlisted} here but not listed",
        highlight=False,
    )
    if report.mismatched:
        raise typer.Exit(1)


def _verify_against_stats(root: Path, selection) -> None:  # type: ignore[no-untyped-def]
    from extract.cache.catalog import Integrity
    from extract.cache.layout import DATA_FILE
    from extract.cache.verify import verify_cache

    report = verify_cache(root, lambda c: selection.matches(f"{c.entry.key}/{DATA_FILE}"))
    for c in report.corrupt:
        err.print(f"[red]corrupt[/] {c.entry.key}: {escape(c.reason)}", highlight=False)
    for c in report.recorded:
        out.print(f"recorded  {c.entry.key}: sha256 {c.sha256}", highlight=False)
    out.print(
        f"{len(report.entries)} entries: {report.count(Integrity.PRESENT)} present, "
        f"{len(report.recorded)} newly verified, "
        f"{report.count(Integrity.UNVERIFIED) - len(report.recorded)} unverified, "
        f"{len(report.corrupt)} corrupt",
        highlight=False,
    )
    if report.not_recorded:
        err.print(
            f"[yellow]could not record hashes[/] ({escape(report.not_recorded)}); "
            "the entries stay unverified",
            highlight=False,
        )
    if report.corrupt:
        out.print("`iqb extract run` re-makes corrupt entries (no --force needed)")
        raise typer.Exit(1)


@cache_app.command("usage")
def cache_usage(
    dataset: DatasetOpt = None,
    granularity: GranularityOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Local cache size and query cost (bytes billed, from stats.json) per period."""
    from extract.sync.audit import usage

    root = artifacts_root(artifacts)
    rows = usage(root, _selection(dataset, granularity, start, end))
    if as_json:
        json.dump(
            {
                "artifacts": str(root),
                "periods": [
                    {
                        "start": r.start.isoformat(),
                        "end": r.end.isoformat(),
                        "entries": r.entries,
                        "files": r.files,
                        "bytes": r.bytes,
                        "bytes_billed": r.bytes_billed,
                        "bytes_processed": r.bytes_processed,
                    }
                    for r in rows
                ],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return
    table = Table(title=f"cache usage under {root}")
    for col in ("period", "entries", "files", "MB", "GB billed", "GB processed"):
        table.add_column(col, justify="left" if col == "period" else "right")
    for r in rows:
        table.add_row(
            f"{r.start}..{r.end}",
            str(r.entries),
            str(r.files),
            f"{r.bytes / 1e6:.1f}",
            f"{r.bytes_billed / 1e9:.2f}",
            f"{r.bytes_processed / 1e9:.2f}",
        )
    table.add_row(
        "total",
        str(sum(r.entries for r in rows)),
        str(sum(r.files for r in rows)),
        f"{sum(r.bytes for r in rows) / 1e6:.1f}",
        f"{sum(r.bytes_billed for r in rows) / 1e9:.2f}",
        f"{sum(r.bytes_processed for r in rows) / 1e9:.2f}",
    )
    out.print(table)


@sync_app.command("push")
@disk_errors
def sync_push(
    jobs: JobsSyncOpt = 8,
    dry_run: Annotated[bool, typer.Option(help="List what would move; change nothing.")] = False,
    delete: Annotated[
        bool,
        typer.Option(
            help="Drop files that are not here from the manifest, and delete objects no "
            "manifest names any more (after publishing)."
        ),
    ] = False,
    env_file: Annotated[
        Path,
        typer.Option(
            help="Read GCP_PROJECT, GCP_BUCKET (and other settings) from this file if it "
            "exists; the environment wins."
        ),
    ] = Path(".env"),
    allow_synthetic: Annotated[
        bool,
        typer.Option(
            help="Publish cache entries made from synthetic data (`iqb sample`) too; refused "
            "by default, so a shared bucket never serves them as real."
        ),
    ] = False,
    timeout: TimeoutOpt = 60.0,
    retry_deadline: RetryOpt = 30.0,
    artifacts: ArtifactsOpt = None,
    keep_days: KeepDaysOpt = 30,
    keep_last: KeepLastOpt = 10,
) -> None:
    """Upload new and changed artifacts to gs://$GCP_BUCKET, then publish the manifest."""
    from dotenv import load_dotenv

    from extract.sync.push import SyntheticRefused, push
    from extract.sync.remote import ENV_BUCKET, ENV_PROJECT, GcsRemote, SyncError, Transfer

    # The environment wins over .env (override=False): `GCP_BUCKET=B ./sync_artifacts.sh`
    # publishes to B whatever .env says; say where each setting came from.
    origin = {v: "environment" for v in (ENV_PROJECT, ENV_BUCKET) if os.environ.get(v)}
    if env_file.is_file():
        load_dotenv(env_file, override=False)
        origin.update(
            {
                v: str(env_file)
                for v in (ENV_PROJECT, ENV_BUCKET)
                if v not in origin and os.environ.get(v)
            }
        )
    root = artifacts_root(artifacts)
    try:
        remote = GcsRemote.from_env(Transfer(read_timeout=timeout, retry_deadline=retry_deadline))
    except SyncError as exc:
        raise fail(str(exc), 2) from None
    if dry_run:
        out.print(
            f"dry run: would push {root} to {remote.label} (bucket from "
            f"{origin.get(ENV_BUCKET, '?')}), project {os.environ.get(ENV_PROJECT)} "
            f"(from {origin.get(ENV_PROJECT, '?')})",
            highlight=False,
            markup=False,
        )
    progress, task = _transfer_progress(f"push to {remote.label}")
    try:
        with progress:
            report = push(
                root,
                remote,
                jobs=jobs,
                dry_run=dry_run,
                delete=delete,
                allow_synthetic=allow_synthetic,
                on_upload=lambda _up: progress.advance(task),  # type: ignore[arg-type]
                keep_days=keep_days,
                keep_last=keep_last,
            )
    except SyncError as exc:
        raise fail(str(exc), 2 if isinstance(exc, SyntheticRefused) else 1) from None
    mb = sum(u.size for u in report.uploads) / 1e6
    if dry_run:
        for up in report.uploads:
            out.print(
                f"would upload  {up.key}  ({up.size / 1e6:.2f} MB, "
                f"{'changed' if up.replaces else 'new'})",
                highlight=False,
            )
        if delete:
            for key in report.remote_only:
                out.print(f"would drop    {key}  (not here)", highlight=False)
            for sid in report.pruned:
                out.print(
                    f"would prune   state/manifests/{sid}.json  (past retention)", highlight=False
                )
            for obj in report.garbage:
                out.print(f"would delete  {obj.name}", highlight=False)
        out.print(
            f"dry run: {len(report.uploads)} file(s), {mb:.1f} MB would be uploaded, "
            f"{report.unchanged} unchanged; nothing was changed",
            highlight=False,
        )
        return
    out.print(
        f"uploaded {report.created} file(s), {report.bytes / 1e6:.1f} MB; reused "
        f"{report.reused} existing object(s); {report.unchanged} unchanged",
        highlight=False,
    )
    if report.snapshot:
        out.print(f"database snapshot: {report.snapshot}", highlight=False)
    if report.published:
        out.print(
            f"published {remote.url_for_manifest()} (generation {report.generation})",
            highlight=False,
        )
        _print_kept_state(report.state)
        if report.replaced and report.replaced.rollback_of:  # someone rolled back on purpose
            err.print(
                f"[bold yellow]note:[/] this push replaced state {report.replaced.id}, a "
                f"rollback to {report.replaced.rollback_of}; `iqb sync rollback "
                f"{report.replaced.id}` puts it back",
                highlight=False,
            )
    else:
        out.print("manifest unchanged: nothing published")
    if report.remote_only and not delete:
        out.print(
            f"kept {len(report.remote_only)} file(s) in the manifest that are not here "
            "(--delete drops them)"
        )
    if delete:
        if report.pruned:
            out.print(
                f"pruned {len(report.pruned)} kept state(s) past retention: "
                f"{', '.join(report.pruned)}",
                highlight=False,
            )
        out.print(f"deleted {len(report.garbage)} object(s) no manifest names")
    if report.log:
        out.print(f"log: {report.log}", highlight=False)


# ---------------------------------------------------------------------------
# Backups you can restore: create the bucket, the history of published states,
# rollback (issue 14). The work is in extract/sync/bucket.py and history.py.
# ---------------------------------------------------------------------------


def _gcs_remote(env_file: Path, timeout: float, retry_deadline: float):  # type: ignore[no-untyped-def]
    """The bucket from GCP_PROJECT / GCP_BUCKET (environment, then ``env_file``), or exit 2."""
    from dotenv import load_dotenv

    from extract.sync.bucket import bucket_problem
    from extract.sync.remote import ENV_BUCKET, GcsRemote, SyncError, Transfer

    if env_file.is_file():
        load_dotenv(env_file, override=False)
    name = os.environ.get(ENV_BUCKET, "").removeprefix("gs://").strip("/")
    if name and (problem := bucket_problem(name)):  # the client would raise a bare ValueError
        raise fail(f"{ENV_BUCKET}: {problem}", 2)
    try:
        return GcsRemote.from_env(Transfer(read_timeout=timeout, retry_deadline=retry_deadline))
    except SyncError as exc:
        raise fail(str(exc), 2) from None


def _print_kept_state(info) -> None:  # type: ignore[no-untyped-def]
    if info is not None:
        out.print(
            f"kept as state {info.id} (commit {info.commit[:12]}, {info.files} files, "
            f"{info.bytes / 1e6:.1f} MB): `iqb sync history` lists it",
            highlight=False,
        )


@sync_app.command("create-bucket")
def sync_create_bucket(
    location: Annotated[
        str,
        typer.Option(
            help="Where the bucket lives: a multi-region (US, EU, ASIA) or a region (us-central1)."
        ),
    ] = "US",
    soft_delete_days: Annotated[
        int, typer.Option(help="Days a deleted or replaced object stays restorable (14 to 90).")
    ] = 14,
    public_read: Annotated[
        bool,
        typer.Option(
            help="Let anyone read the published files (allUsers: objectViewer), as M-Lab's "
            "bucket does."
        ),
    ] = False,
    env_file: EnvFileOpt = Path(".env"),
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Create gs://$GCP_BUCKET in $GCP_PROJECT for backups; an existing bucket is only reported.

    New buckets get uniform bucket-level access and soft delete; an existing
    one is left exactly as it is, its settings printed, with a warning when
    soft delete is shorter than 14 days.
    """
    from extract.sync.bucket import BucketPlan, create_bucket
    from extract.sync.remote import SyncError

    remote = _gcs_remote(env_file, timeout, 0)
    plan = BucketPlan(remote.bucket_name, location, soft_delete_days, public_read)
    problems = plan.problems()
    if problems:
        raise fail("; ".join(problems), 2)
    try:
        result = create_bucket(remote.client, os.environ["GCP_PROJECT"], plan, remote.transfer)
    except SyncError as exc:
        raise fail(str(exc)) from None
    settings = result.settings
    if result.created:
        out.print(
            f"created gs://{plan.name} in {plan.location}, asking for uniform bucket-level "
            f"access, soft delete {plan.soft_delete_days} days, "
            f"{'public read' if plan.public_read else 'public access prevented'}. "
            "The bucket reports:",
            highlight=False,
        )
    else:
        out.print(
            f"gs://{plan.name} exists already: nothing was changed. Its settings:", highlight=False
        )
    for label, value in settings.rows():
        out.print(f"  {label + ':':30} {value}", highlight=False)
    # Also after creating: a server that ignored a setting must not pass silently.
    for warning in settings.warnings:
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    if result.public_read_error:
        raise fail(result.public_read_error)


@sync_app.command("history")
def sync_history(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout.")] = False,
    env_file: EnvFileOpt = Path(".env"),
    timeout: TimeoutOpt = 60.0,
    retry_deadline: RetryOpt = 30.0,
) -> None:
    """List the published states of gs://$GCP_BUCKET, newest first.

    Each is kept as state/manifests/<id>.json: pull its manifest_url to restore
    that state anywhere, or `iqb sync rollback <id>` to make it current again.
    """
    from extract.sync.history import history
    from extract.sync.remote import SyncError

    remote = _gcs_remote(env_file, timeout, retry_deadline)
    try:
        listing = history(remote)
    except SyncError as exc:
        raise fail(str(exc)) from None
    if listing.problem:
        err.print(
            f"[yellow]warning:[/] the current manifest is unusable, so no state is marked "
            f"current (`iqb sync rollback <id>` replaces it): {listing.problem}",
            highlight=False,
        )
    if listing.unpublished:
        err.print(
            f"note: {len(listing.unpublished)} kept manifest(s) were written by a push that "
            f"never published (interrupted), not listed: {', '.join(listing.unpublished)}",
            highlight=False,
        )
    if listing.unreadable:
        err.print(
            f"[yellow]warning:[/] {len(listing.unreadable)} kept manifest(s) have no "
            f"readable state record: {', '.join(listing.unreadable)}",
            highlight=False,
        )
    if as_json:
        json.dump([e.to_json() for e in listing.entries], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if not listing.entries:
        out.print(
            f"no published states kept in {remote.label} yet (the next push keeps one)",
            highlight=False,
        )
        return
    table = Table(title=f"published states of {remote.label}, newest first")
    for col in ("id", "published at (UTC)", "commit", "files", "MB", "note", "manifest"):
        table.add_column(
            col, justify="right" if col in ("files", "MB") else "left", overflow="fold"
        )
    for e in listing.entries:
        note = ", ".join(
            n
            for n in (
                "current" if e.current else "",
                f"rollback to {e.info.rollback_of}" if e.info.rollback_of else "",
            )
            if n
        )
        table.add_row(
            e.info.id,
            e.info.published_at,
            e.info.commit[:12],
            str(e.info.files),
            f"{e.info.bytes / 1e6:.1f}",
            note,
            e.manifest_url,
        )
    out.print(table)


@sync_app.command("rollback")
def sync_rollback(
    state: Annotated[
        str,
        typer.Argument(
            help="The id of a published state, e.g. 20261130T120000Z (see `iqb sync history`)."
        ),
    ],
    dry_run: Annotated[bool, typer.Option(help="Say what would change; publish nothing.")] = False,
    env_file: EnvFileOpt = Path(".env"),
    timeout: TimeoutOpt = 60.0,
    retry_deadline: RetryOpt = 30.0,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Make an older published state current again (a new entry of the history).

    Publishes that state's manifest as state/manifest.json with the same
    compare-and-swap as a push; logged under artifacts/state/logs/. Local
    artifacts are not touched: a later push from a machine that still holds
    the bad files publishes them again.
    """
    from extract.sync.history import check_state_id, rollback
    from extract.sync.remote import SyncError

    try:
        check_state_id(state)
    except SyncError as exc:
        raise fail(str(exc), 2) from None
    remote = _gcs_remote(env_file, timeout, retry_deadline)
    try:
        report = rollback(remote, state, artifacts_root(artifacts), dry_run=dry_run)
    except SyncError as exc:
        raise fail(str(exc)) from None
    change = f"{report.added} file(s) come back, {report.removed} go, {report.changed} change"
    if report.problem:
        err.print(
            f"[yellow]note:[/] the current manifest is unusable and is replaced whole: "
            f"{report.problem}",
            highlight=False,
        )
    if report.published is None and not dry_run:
        out.print(
            f"state {state} is already current in {remote.label}: nothing published",
            highlight=False,
        )
        return
    if dry_run:
        out.print(
            f"dry run: rolling back to {state} would publish its manifest: {change}; "
            "nothing was changed",
            highlight=False,
        )
        return
    out.print(f"rolled back {remote.label} to state {state}: {change}", highlight=False)
    out.print(
        f"published {remote.url_for_manifest()} (generation {report.published.generation})",
        highlight=False,
    )
    _print_kept_state(report.published.info)
    if report.log:
        out.print(f"log: {report.log}", highlight=False)


@app.command()
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
    from extract.report import ReportError, build_report, shell_command

    root = artifacts_root(artifacts)
    if html or out_dir is not None:
        from extract.report_html.cli import html_report

        html_report(root, out_dir, out, fail, drill_limit)
        return
    try:
        rep = build_report(root, top=top)
    except ReportError as exc:
        raise fail(str(exc)) from None
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


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else f"{value:{fmt}}"


# Upstream's name for the extract step (m-lab/iqb: `iqb pipeline run`): the same command.
pipeline_app = typer.Typer(help="Upstream's name for `iqb extract`.", no_args_is_help=True)
pipeline_app.command(
    "run", help="Same as `iqb extract run` (upstream's name for it). " + (extract_run.__doc__ or "")
)(extract_run)
app.add_typer(pipeline_app, name="pipeline")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"iqb {version('iqb-workspace')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_version
        ),
    ] = False,
) -> None:
    """IQB data workspace: M-Lab NDT measurements -> Parquet cache -> dbt."""


# Piped output has no terminal width: rich would assume 80 columns and cut
# option and variable names in --help and in tables. Wide enough for all of them.
PIPED_COLUMNS = 200


def main() -> None:
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        os.environ["COLUMNS"] = str(PIPED_COLUMNS)  # read by the help's console
        out.width = err.width = PIPED_COLUMNS
    app()


if __name__ == "__main__":
    main()
