"""``iqb sync push``: publish the artifacts, so others pull instead of recomputing.

The upload, the compare-and-swap publish and the retention are
extract/sync/push.py; this module says where the bucket setting came from
(environment or .env), which matters when the wrong bucket would be written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from extract import defaults
from extract.cli.common import (
    artifacts_root,
    disk_errors,
    err,
    fail,
    gcs_remote,
    out,
    transfer_progress,
)
from extract.cli.options import ArtifactsOpt, EnvFileOpt, JobsTransferOpt, RetryOpt, TimeoutOpt
from extract.paths import MANIFESTS_HISTORY

if TYPE_CHECKING:
    from extract.sync.push import PushReport
    from extract.sync.states import StateInfo

# Retention of the kept states (a backup one can restore from); applied by `sync push --delete`.
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


@disk_errors
def sync_push(
    jobs: JobsTransferOpt = defaults.NETWORK_JOBS,
    dry_run: Annotated[bool, typer.Option(help="List what would move; change nothing.")] = False,
    delete: Annotated[
        bool,
        typer.Option(
            help="Drop files that are not here from the manifest, and delete objects no "
            "manifest names any more (after publishing)."
        ),
    ] = False,
    env_file: EnvFileOpt = Path(".env"),
    allow_synthetic: Annotated[
        bool,
        typer.Option(
            help="Publish cache entries made from synthetic data (`iqb sample`) too; refused "
            "by default, so a shared bucket never serves them as real."
        ),
    ] = False,
    timeout: TimeoutOpt = defaults.READ_TIMEOUT_S,
    retry_deadline: RetryOpt = defaults.RETRY_DEADLINE_S,
    artifacts: ArtifactsOpt = None,
    keep_days: KeepDaysOpt = defaults.KEEP_DAYS,
    keep_last: KeepLastOpt = defaults.KEEP_LAST,
) -> None:
    """Upload new and changed artifacts to gs://$GCP_BUCKET, then publish the manifest."""
    from extract.sync.push import SyntheticRefused, push
    from extract.sync.remote import SyncError

    origin = settings_origin(env_file)
    root = artifacts_root(artifacts)
    remote = gcs_remote(env_file, timeout, retry_deadline)
    if dry_run:
        print_target(root, remote.label, origin)
    progress, task = transfer_progress(f"push to {remote.label}")
    try:
        with progress:
            report = push(
                root,
                remote,
                jobs=jobs,
                dry_run=dry_run,
                delete=delete,
                allow_synthetic=allow_synthetic,
                on_upload=lambda _up: progress.advance(task),
                keep_days=keep_days,
                keep_last=keep_last,
            )
    except SyncError as exc:
        raise fail(str(exc), 2 if isinstance(exc, SyntheticRefused) else 1) from None
    if dry_run:
        print_plan(report, delete)
    else:
        print_done(report, remote.url_for_manifest(), delete)


def settings_origin(env_file: Path) -> dict[str, str]:
    """Load .env without overriding the environment; say where each setting came from.

    The environment wins over .env (override=False): `GCP_BUCKET=B ./sync_artifacts.sh`
    publishes to B whatever .env says."""
    from dotenv import load_dotenv

    from extract.sync.remote import ENV_BUCKET, ENV_PROJECT

    origin = {v: "environment" for v in (ENV_PROJECT, ENV_BUCKET) if os.environ.get(v)}
    if env_file.is_file():
        load_dotenv(env_file, override=False)
        for v in (ENV_PROJECT, ENV_BUCKET):
            if v not in origin and os.environ.get(v):
                origin[v] = str(env_file)
    return origin


def print_target(root: Path, label: str, origin: dict[str, str]) -> None:
    from extract.sync.remote import ENV_BUCKET, ENV_PROJECT

    out.print(
        f"dry run: would push {root} to {label} (bucket from "
        f"{origin.get(ENV_BUCKET, '?')}), project {os.environ.get(ENV_PROJECT)} "
        f"(from {origin.get(ENV_PROJECT, '?')})",
        highlight=False,
        markup=False,
    )


def print_plan(report: PushReport, delete: bool) -> None:
    """The plan of a dry run: every upload, and with --delete what would go."""
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
                f"would prune   {MANIFESTS_HISTORY}{sid}.json  (past retention)", highlight=False
            )
        for obj in report.garbage:
            out.print(f"would delete  {obj.name}", highlight=False)
    size = sum(u.size for u in report.uploads)
    out.print(
        f"dry run: {len(report.uploads)} file(s), {size / 1e6:.1f} MB would be uploaded "
        f"({size} bytes), {report.unchanged} unchanged; nothing was changed",
        highlight=False,
    )


def print_done(report: PushReport, manifest_url: str, delete: bool) -> None:
    out.print(
        f"uploaded {report.created} file(s), {report.bytes / 1e6:.1f} MB; reused "
        f"{report.reused} existing object(s); {report.unchanged} unchanged",
        highlight=False,
    )
    if report.snapshot:
        out.print(f"database snapshot: {report.snapshot}", highlight=False)
    if report.published:
        out.print(f"published {manifest_url} (generation {report.generation})", highlight=False)
        print_kept_state(report.state)
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


def print_kept_state(info: StateInfo | None) -> None:
    """The state a publish kept (push or rollback), so it can be rolled back to later."""
    if info is not None:
        out.print(
            f"kept as state {info.id} (commit {info.commit[:12]}, {info.files} files, "
            f"{info.bytes / 1e6:.1f} MB): `iqb sync history` lists it",
            highlight=False,
        )
