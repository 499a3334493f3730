"""``iqb sync``: the bucket that backs the cache up, and its history of published states.

Push has its own module (extract/cli/sync_push.py); here are the commands that
make a backup restorable: create the bucket with soft delete, list
the kept states, roll back to one. The work is in extract/sync/bucket.py and
history.py; these functions parse options and print.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from extract import defaults
from extract.cli.common import artifacts_root, err, fail, gcs_remote, out, print_json
from extract.cli.options import ArtifactsOpt, EnvFileOpt, RetryOpt, TimeoutOpt
from extract.cli.sync_push import print_kept_state, sync_push


def sync_create_bucket(
    location: Annotated[
        str,
        typer.Option(
            help="Where the bucket lives: a multi-region (US, EU, ASIA) or a region (us-central1)."
        ),
    ] = "US",
    soft_delete_days: Annotated[
        int, typer.Option(help="Days a deleted or replaced object stays restorable (14 to 90).")
    ] = defaults.SOFT_DELETE_DAYS,
    public_read: Annotated[
        bool,
        typer.Option(
            help="Let anyone read the published files (allUsers: objectViewer), as M-Lab's "
            "bucket does."
        ),
    ] = False,
    env_file: EnvFileOpt = Path(".env"),
    timeout: TimeoutOpt = defaults.READ_TIMEOUT_S,
) -> None:
    """Create gs://$GCP_BUCKET in $GCP_PROJECT for backups; an existing bucket is only reported.

    New buckets get uniform bucket-level access and soft delete; an existing
    one is left exactly as it is, its settings printed, with a warning when
    soft delete is shorter than 14 days.
    """
    from extract.sync.bucket import BucketPlan, create_bucket
    from extract.sync.remote import SyncError

    remote = gcs_remote(env_file, timeout, 0)
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


def sync_history(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout.")] = False,
    env_file: EnvFileOpt = Path(".env"),
    timeout: TimeoutOpt = defaults.READ_TIMEOUT_S,
    retry_deadline: RetryOpt = defaults.RETRY_DEADLINE_S,
) -> None:
    """List the published states of gs://$GCP_BUCKET, newest first.

    Each is kept as state/manifests/<id>.json: pull its manifest_url to restore
    that state anywhere, or `iqb sync rollback <id>` to make it current again.
    """
    from extract.sync.history import history
    from extract.sync.remote import SyncError

    remote = gcs_remote(env_file, timeout, retry_deadline)
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
    if listing.edited:
        err.print(
            f"[yellow]warning:[/] the current manifest is not as it was published: "
            f"{listing.edited}. `iqb sync rollback <id> --dry-run` shows how it differs "
            "from a kept state; without --dry-run it republishes that state",
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
    for e in listing.entries:
        if e.disagrees:
            err.print(
                f"[yellow]warning:[/] the record of state {e.info.id} does not describe its "
                f"kept manifest ({e.manifest_url}): {e.disagrees}; its files and MB below are "
                "the record's, marked ✗",
                highlight=False,
            )
    if as_json:
        print_json([e.to_json() for e in listing.entries])
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
                "✗ record disagrees with its manifest" if e.disagrees else "",
            )
            if n
        )
        table.add_row(
            e.info.id,
            e.info.published_at,
            e.info.commit[:12],
            str(e.info.files) + (" ✗" if e.disagrees else ""),
            f"{e.info.bytes / 1e6:.1f}" + (" ✗" if e.disagrees else ""),
            note,
            e.manifest_url,
        )
    out.print(table)


def sync_rollback(
    state: Annotated[
        str,
        typer.Argument(
            help="The id of a published state, e.g. 20261130T120000Z (see `iqb sync history`)."
        ),
    ],
    dry_run: Annotated[bool, typer.Option(help="Say what would change; publish nothing.")] = False,
    env_file: EnvFileOpt = Path(".env"),
    timeout: TimeoutOpt = defaults.READ_TIMEOUT_S,
    retry_deadline: RetryOpt = defaults.RETRY_DEADLINE_S,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Make an older published state current again (a new entry of the history).

    Publishes that state's manifest as state/manifest.json with the same
    compare-and-swap as a push; logged under artifacts/state/logs/. Local
    artifacts are not touched: a later push from a machine that still holds
    the bad files publishes them again.
    """
    from extract.sync.history import rollback
    from extract.sync.remote import SyncError
    from extract.sync.states import check_state_id

    try:
        check_state_id(state)
    except SyncError as exc:
        raise fail(str(exc), 2) from None
    remote = gcs_remote(env_file, timeout, retry_deadline)
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
    if dry_run:
        out.print(
            f"dry run: rolling back to {state} would publish its manifest: {change}; "
            "nothing was changed",
            highlight=False,
        )
        return
    if report.published is None:
        out.print(
            f"state {state} is already current in {remote.label}: nothing published",
            highlight=False,
        )
        return
    out.print(f"rolled back {remote.label} to state {state}: {change}", highlight=False)
    out.print(
        f"published {remote.url_for_manifest()} (generation {report.published.generation})",
        highlight=False,
    )
    print_kept_state(report.published.info)
    if report.log:
        out.print(f"log: {report.log}", highlight=False)


sync_app = typer.Typer(
    help="Mirror the artifacts to a GCS bucket (see `iqb cache pull`).", no_args_is_help=True
)
sync_app.command("push")(sync_push)
sync_app.command("create-bucket")(sync_create_bucket)
sync_app.command("history")(sync_history)
sync_app.command("rollback")(sync_rollback)
