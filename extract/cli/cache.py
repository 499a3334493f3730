"""``iqb cache``: what the local Parquet cache holds, and moving it.

The group's read-only views (status, usage) live here; pull and verify, which
read or write every file, have their own modules. The work is in
extract/cache/ and extract/sync/; these functions parse options and print.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from extract.cli.cache_pull import cache_pull
from extract.cli.cache_verify import cache_verify
from extract.cli.common import (
    artifacts_root,
    disk_errors,
    load_manifest,
    load_or_exit,
    out,
    print_json,
    selection,
)
from extract.cli.options import (
    AllowHttpOpt,
    ArtifactsOpt,
    ConfigOpt,
    DatasetOpt,
    EndOpt,
    GranularityOpt,
    JsonOpt,
    StartOpt,
)

if TYPE_CHECKING:
    from extract.sync.compare import Selection


@disk_errors
def cache_status(
    config: ConfigOpt = Path("pipeline.yaml"),
    as_json: JsonOpt = False,
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

    chosen = selection(dataset, granularity, start, end)
    if manifest:
        _status_against_manifest(
            manifest, as_json, chosen, allow_http, artifacts_root(artifacts), show_all
        )
        return
    matrix = load_or_exit(config, say=not as_json)
    root = artifacts_root(artifacts)
    index = HashIndex(root)
    states = [entry_status(e, root, index) for e in matrix.entries() if chosen.matches_entry(e)]
    index.save()
    counts = Counter(s.state.value for s in states)
    if as_json:
        print_json(
            {
                "artifacts": str(root),
                "counts": counts,
                "entries": [
                    {
                        "key": s.entry.key,
                        "state": s.state.value,
                        "reason": s.reason or None,
                        "source": s.source_kind or None,
                        "left_out_invalid": s.left_out,
                    }
                    for s in states
                ],
            }
        )
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
    hit = [s for s in states if s.left_out]
    if hit:
        out.print(
            f"{len(hit)} entr{'y' if len(hit) == 1 else 'ies'} left out measurements with a "
            "NaN, infinite or out-of-range value (not in any percentile or sample_count): "
            + ", ".join(f"{s.entry.key} ({s.left_out:,})" for s in hit[:6])
            + (f" and {len(hit) - 6} more" if len(hit) > 6 else ""),
            highlight=False,
        )
    if counts.get("corrupt"):
        out.print("corrupt entries are re-made by `iqb extract run` (no --force needed)")
    if counts.get("unverified"):
        out.print(
            "unverified entries are usable; `iqb cache verify` reads them and records their hash"
        )


def _status_against_manifest(
    source: str, as_json: bool, chosen: Selection, allow_http: bool, root: Path, show_all: bool
) -> None:
    """Print how local files compare with the manifest.

    The table lists only the files that differ unless ``show_all``: in a synced
    workspace nearly all of 4,900 files are the same, and drawing them took
    half the command's time to show nothing actionable. The counts always
    cover every file, and --json always lists every file.
    """
    from extract.cache.hashindex import HashIndex
    from extract.sync.compare import FileState, compare
    from extract.sync.redact import redact

    manifest, _, _ = load_manifest(source, allow_http)
    index = HashIndex(root)
    diffs = compare(manifest, root, index, chosen)
    index.save()
    counts = Counter(d.state.value for d in diffs)
    if as_json:
        print_json(
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
            }
        )
        return
    listed = diffs if show_all else [d for d in diffs if d.state != FileState.SAME]
    if listed:
        table = Table(title=redact(f"{root} against {source}"))
        table.add_column("file", overflow="fold")  # a key cut short is no use to act on
        table.add_column("state")
        colour = {"same": "green", "only-remote": "cyan", "only-local": "yellow", "changed": "red"}
        for d in listed:
            table.add_row(d.key, f"[{colour[d.state.value]}]{d.state.value}[/]")
        out.print(table)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no files"
    out.print(f"{summary} (--all lists the same ones too)" if len(listed) < len(diffs) else summary)


def cache_usage(
    dataset: DatasetOpt = None,
    granularity: GranularityOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    as_json: JsonOpt = False,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Local cache size and query cost (bytes billed, from stats.json) per period."""
    from extract.sync.audit import usage

    root = artifacts_root(artifacts)
    rows = usage(root, selection(dataset, granularity, start, end))
    if as_json:
        print_json(
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
            }
        )
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


cache_app = typer.Typer(help="Inspect and move the Parquet cache.", no_args_is_help=True)
cache_app.command("status")(cache_status)
cache_app.command("pull")(cache_pull)
cache_app.command("verify")(cache_verify)
cache_app.command("usage")(cache_usage)
