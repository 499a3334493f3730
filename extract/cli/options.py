"""Options that more than one command takes, each defined once.

A flag spelled, explained and defaulted in one place reads the same in every
command's --help, and a change to it (a new env var, a tighter range) reaches
all of them. Options that only one command takes stay in that command's module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from extract.defaults import JOBS_RULE
from extract.paths import ENV_ARTIFACTS

ArtifactsOpt = Annotated[
    Path | None,
    typer.Option(
        "--artifacts",
        envvar=ENV_ARTIFACTS,
        show_envvar=True,
        help="Artifacts root (cache, raw sample, database). Default: ./artifacts.",
    ),
]
ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Pipeline matrix (upstream pipeline.yaml format).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]

# Reading a manifest (cache and sync commands, `extract run --remote`): the same options everywhere.
AllowHttpOpt = Annotated[
    bool,
    typer.Option(
        help="Also read plain http:// URLs (only on a trusted network, e.g. loopback tests)."
    ),
]
ManifestArg = Annotated[
    str,
    typer.Argument(
        help="Manifest: https:// or gs:// URL, a file, or `mlab` (M-Lab's published cache, "
        "shipped with iqb)."
    ),
]

# Which cache files a cache command touches (extract.sync.compare.Selection).
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

# --jobs: every command spells it the same, and says the one rule of its default.
JobsTransferOpt = Annotated[
    int,
    typer.Option("--jobs", "-j", help=f"Files transferred at once. {JOBS_RULE}", min=1, max=64),
]
JobsHashOpt = Annotated[
    int,
    typer.Option("--jobs", "-j", help=f"Files hashed at once. {JOBS_RULE}", min=1, max=64),
]
JobsEntriesOpt = Annotated[
    int,
    typer.Option("--jobs", "-j", help=f"Entries run at once. {JOBS_RULE}", min=1, max=64),
]

# Talking to a bucket.
TimeoutOpt = Annotated[
    float, typer.Option(help="Seconds to wait for a server response, per request.", min=0.1)
]
RetryOpt = Annotated[
    float,
    typer.Option(help="Seconds to keep retrying a failing request (exponential backoff).", min=0),
]
EnvFileOpt = Annotated[
    Path,
    typer.Option(
        help="Read GCP_PROJECT, GCP_BUCKET (and other settings) from this file if it exists; "
        "the environment wins."
    ),
]
