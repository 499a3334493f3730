"""``iqb cache pull``: fetch a published cache instead of paying to compute it.

The download, its verification and resumption are extract/sync/pull.py; this
module parses the options and says what happened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from extract import defaults
from extract.cli.common import (
    artifacts_root,
    disk_errors,
    err,
    fail,
    load_manifest,
    out,
    selection,
    transfer_progress,
)
from extract.cli.options import (
    AllowHttpOpt,
    ArtifactsOpt,
    DatasetOpt,
    EndOpt,
    GranularityOpt,
    JobsTransferOpt,
    ManifestArg,
    RetryOpt,
    StartOpt,
    TimeoutOpt,
)


@disk_errors
def cache_pull(
    manifest: ManifestArg,
    dataset: DatasetOpt = None,
    granularity: GranularityOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    jobs: JobsTransferOpt = defaults.NETWORK_JOBS,
    force: Annotated[
        bool, typer.Option(help="Also replace local files that differ from the manifest.")
    ] = False,
    accept_local: Annotated[
        bool,
        typer.Option(
            help="After state/pulled.json was found unreadable: keep the local files it could "
            "not judge as local work (and delete its moved-aside copy)."
        ),
    ] = False,
    allow_http: AllowHttpOpt = False,
    timeout: TimeoutOpt = defaults.READ_TIMEOUT_S,
    retry_deadline: RetryOpt = defaults.RETRY_DEADLINE_S,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Download the (selected) files of a manifest that are missing here, verified by SHA256."""
    from extract.sync.pull import pull
    from extract.sync.redact import redact
    from extract.sync.remote import SyncError

    chosen = selection(dataset, granularity, start, end)
    root = artifacts_root(artifacts)
    loaded, reader, transfer = load_manifest(manifest, allow_http, timeout, retry_deadline)
    progress, task = transfer_progress("pull")
    try:
        with progress:
            report = pull(
                root,
                loaded,
                reader,
                transfer,
                selection=chosen,
                jobs=jobs,
                force=force,
                refused=reader.problem,
                on_done=lambda _key: progress.advance(task),
                origin=redact(manifest),
                accept_local=accept_local,
            )
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
    if report.withdrawn:
        out.print(
            f"removed {len(report.withdrawn)} file(s) that an earlier pull of this manifest "
            "downloaded and that it no longer names (a rollback, or push --delete)"
        )
    if report.log:
        out.print(f"log: {report.log}", highlight=False)
    if report.moved:
        err.print(
            f"[yellow]warning:[/] {report.moved.parent / 'pulled.json'} (what earlier pulls "
            f"downloaded) could not be read; moved aside to {escape(str(report.moved))}",
            highlight=False,
        )
    for key, reason in report.failures:
        err.print(f"[red]failed[/] {escape(key)}: {escape(reason)}", highlight=False)
    if report.mismatched:
        raise fail(
            f"{len(report.failures)} file(s) failed, {len(report.mismatched)} of them because "
            "the bucket's bytes are not those the manifest names (the objects changed since "
            "it was published): pulling again will not mend that; the publisher must push "
            "again, or roll back to an intact state (`iqb sync history`)"
        )
    if report.unjudged:
        raise fail(unjudged_message(report.unjudged, report.undecided))
    if report.failures:
        raise fail(
            f"{len(report.failures)} file(s) failed; run the same pull again to "
            "resume (finished files are kept)"
        )


def unjudged_message(keys: list[str], moved: list[Path]) -> str:
    """Why a pull that could not judge some local files fails, and how the user decides."""
    from extract.sync.remote import bullets

    return (
        f"{len(keys)} local file(s) could not be judged, because the record of what earlier "
        f"pulls downloaded was unreadable (moved aside: {', '.join(str(p) for p in moved)}). "
        "Each may be a file pulled earlier that the publisher has since replaced or "
        "withdrawn, or your own work; all were kept:\n"
        f"{bullets(keys)}\nDecide, then pull again: `--accept-local` keeps them as local "
        "work (and deletes the moved copy); `--force` takes the manifest's bytes for those "
        "it names; delete by hand those it does not name that you do not want."
    )
