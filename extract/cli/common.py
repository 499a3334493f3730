"""What every ``iqb`` command shares: the consoles, and turning a problem into an exit.

A command reports a problem the same way wherever it comes from: one
``error:`` line on stderr, exit 2 for bad input (checked before anything is
written), exit 1 for a failure while working. Keeping these in one place keeps
the commands' modules to parsing options and printing results.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

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

from extract import defaults
from extract.extraction.matrix import ConfigError, Matrix, load_matrix
from extract.paths import default_artifacts

if TYPE_CHECKING:
    from extract.sync.compare import Selection
    from extract.sync.manifest import Manifest
    from extract.sync.remote import GcsRemote, Transfer
    from extract.sync.source import UrlSource


class RedactingConsole(Console):
    """A console that never prints URL credentials or tokens (see extract/sync/redact.py)."""

    def print(self, *objects: object, **kwargs: Any) -> None:
        from extract.sync.redact import redact

        super().print(*(redact(o) if isinstance(o, str) else o for o in objects), **kwargs)


# soft_wrap: messages keep whole lines (paths, reasons) when piped or in CI logs,
# instead of being cut at 80 columns; tables still fit the terminal.
out = RedactingConsole(soft_wrap=True)
err = RedactingConsole(stderr=True, soft_wrap=True)
P = ParamSpec("P")


def artifacts_root(value: Path | None) -> Path:
    return value.absolute() if value else default_artifacts()


def load_or_exit(config: Path, say: bool = True) -> Matrix:
    """Load the matrix or print every problem and exit 2, before anything is written.

    Says which file it read (on stderr): ``--config`` defaults to the production
    ``pipeline.yaml``, and a demo workspace run without ``--config pipeline.demo.yaml``
    would otherwise only show 203 months of "no input" to explain itself.
    ``say=False`` for ``--json``, whose reader wants one document and nothing else.
    """
    try:
        matrix = load_matrix(config)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    periods = len(matrix.periods)
    if not say:
        return matrix
    err.print(
        f"matrix: {config} ({periods} month{'' if periods == 1 else 's'}, "
        f"{len(matrix.entries())} entries)",
        markup=False,
        highlight=False,
    )
    return matrix


def print_json(document: object) -> None:
    """``--json`` output: indented, one trailing newline, on stdout (never through rich,
    whose markup and wrapping would change the text)."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


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
        from extract.extraction.runner import disk_problem

        try:
            command(*args, **kwargs)
        except OSError as exc:
            problem = disk_problem(exc)
            if problem is None and exc.errno != errno.EACCES:
                raise
            raise fail(problem or f"cannot write {exc.filename}: {exc.strerror}") from None

    return wrapper


def progress_bar(transient: bool = False, terminal_only: bool = False) -> Progress:
    """A bar on stderr, so stdout stays the result (tables, JSON) when piped."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=transient,
        disable=terminal_only and not err.is_terminal,
    )


def transfer_progress(label: str) -> tuple[Progress, TaskID]:
    """A bar for files moving to or from a bucket; drawn only on a terminal, then erased."""
    progress = progress_bar(transient=True, terminal_only=True)
    return progress, progress.add_task(label, total=None)


def selection(
    dataset: list[str] | None, granularity: list[str] | None, start: str | None, end: str | None
) -> Selection:
    """The files --dataset / --granularity / --start / --end select, or exit 2."""
    from extract.sync.compare import Selection

    try:
        return Selection.build(dataset, granularity, start, end)
    except ValueError as exc:
        raise fail(str(exc), 2) from None


def load_manifest(
    source: str,
    allow_http: bool,
    timeout: float = defaults.READ_TIMEOUT_S,
    retry_deadline: float = defaults.RETRY_DEADLINE_S,
) -> tuple[Manifest, UrlSource, Transfer]:
    """(manifest, source, transfer) for a manifest argument, or exit 2 with the reason."""
    from extract.extraction.manifests import resolve_manifest
    from extract.sync.manifest import ManifestError
    from extract.sync.remote import SyncError, Transfer
    from extract.sync.source import load_manifest, source_for

    source = resolve_manifest(source)
    transfer = Transfer(read_timeout=timeout, retry_deadline=retry_deadline)
    reader = source_for(source, transfer, allow_http)
    try:
        return load_manifest(source, reader), reader, transfer
    except (SyncError, ManifestError) as exc:
        raise fail(str(exc), 2) from None


def gcs_remote(env_file: Path, timeout: float, retry_deadline: float) -> GcsRemote:
    """The bucket from GCP_PROJECT / GCP_BUCKET (environment, then ``env_file``), or exit 2.

    Its endpoint is reached once first: the storage client would retry a dead or
    unresolvable one for the whole retry deadline before saying anything.
    """
    from dotenv import load_dotenv

    from extract.sync.bucket import bucket_problem
    from extract.sync.remote import ENV_BUCKET, ENV_EMULATOR, GcsRemote, SyncError, Transfer
    from extract.sync.source import check_reachable

    if env_file.is_file():
        load_dotenv(env_file, override=False)
    name = os.environ.get(ENV_BUCKET, "").removeprefix("gs://").strip("/")
    if name and (problem := bucket_problem(name)):  # the client would raise a bare ValueError
        raise fail(f"{ENV_BUCKET}: {problem}", 2)
    try:
        remote = GcsRemote.from_env(Transfer(read_timeout=timeout, retry_deadline=retry_deadline))
        check_reachable(
            [remote.url_for_manifest()],
            None,
            remote.transfer,
            f"{remote.label} was not reached, nothing was changed (check the network"
            + (f", or {ENV_EMULATOR}" if os.environ.get(ENV_EMULATOR) else "")
            + ")",
        )
    except SyncError as exc:
        raise fail(str(exc), 2) from None
    return remote
