"""``iqb cache pull``: fetch a published cache instead of paying to compute it.

The download, its verification and resumption are extract/sync/pull.py; this
module parses the options and says what happened.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

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
    JobsSyncOpt,
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
    for key, reason in report.failures:
        err.print(f"[red]failed[/] {escape(key)}: {escape(reason)}", highlight=False)
    if report.mismatched:
        raise fail(
            f"{len(report.failures)} file(s) failed, {len(report.mismatched)} of them because "
            "the bucket's bytes are not those the manifest names (the objects changed since "
            "it was published): pulling again will not mend that; the publisher must push "
            "again, or roll back to an intact state (`iqb sync history`)"
        )
    if report.failures:
        raise fail(
            f"{len(report.failures)} file(s) failed; run the same pull again to "
            "resume (finished files are kept)"
        )
