"""``iqb cache verify``: re-read every byte, so silent corruption is found before dbt reads it.

Two checks with one command: against a manifest (extract/sync/audit.py), or
each entry against its own stats.json (extract/cache/verify.py), which also
records the hash of upstream entries that lack one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from extract import defaults
from extract.cli.common import artifacts_root, disk_errors, err, load_manifest, out, selection
from extract.cli.options import (
    AllowHttpOpt,
    ArtifactsOpt,
    DatasetOpt,
    EndOpt,
    GranularityOpt,
    JobsHashOpt,
    StartOpt,
)

if TYPE_CHECKING:
    from extract.sync.compare import Selection


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
    jobs: JobsHashOpt = defaults.LOCAL_JOBS,
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
    chosen = selection(dataset, granularity, start, end)
    if manifest is None:
        _verify_against_stats(root, chosen)
        return
    loaded, _, _ = load_manifest(manifest, allow_http)
    report = verify(root, loaded, chosen, jobs)
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


def _verify_against_stats(root: Path, chosen: Selection) -> None:
    from extract.cache.catalog import Integrity
    from extract.cache.layout import DATA_FILE
    from extract.cache.verify import verify_cache

    report = verify_cache(root, lambda c: chosen.matches(f"{c.entry.key}/{DATA_FILE}"))
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
