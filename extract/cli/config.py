"""``iqb config export``: the workspace's thresholds and weights in upstream's config format.

A researcher who wants to score the published data with other thresholds or
weights starts from the numbers the database was scored with: this writes
them (the seeds ``iqb_requirements`` and ``iqb_use_cases``) as upstream
m-lab/iqb's nested config, YAML or JSON, which ``api.scores(..., config=FILE)``
reads back. Unchanged, it gives the database's scores bit for bit.
"""

from __future__ import annotations

import csv
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from extract.cli.common import artifacts_root, disk_errors, err, fail, out
from extract.cli.options import ArtifactsOpt

config_app = typer.Typer(
    help="The IQB score's config (thresholds and weights) in upstream m-lab/iqb's format.",
    no_args_is_help=True,
)
SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"


class Format(StrEnum):
    yaml = "yaml"
    json = "json"


def _from_seed_files() -> dict[str, Any]:
    from extract.results.scoring import config_from_seeds

    with open(SEEDS / "iqb_requirements.csv", newline="") as fh:
        requirements = [
            (r["use_case"], r["requirement"], float(r["weight"]), float(r["threshold"]))
            for r in csv.DictReader(fh)
        ]
    with open(SEEDS / "iqb_use_cases.csv", newline="") as fh:
        use_cases = [(r["use_case"], float(r["weight"])) for r in csv.DictReader(fh)]
    return config_from_seeds(requirements, use_cases)


@config_app.command("export")
@disk_errors
def export(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file (default: standard output)."),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="yaml or json (default: from --output's suffix, else yaml)."),
    ] = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Write the config the database was scored with (else the seeds of this checkout).

    Edit it and score without a rebuild: api.scores("country", config="FILE").
    """
    from extract.cache.store import atomic_path
    from extract.paths import ArtifactPaths
    from extract.results import api
    from extract.results.scoring import dump_config

    root = artifacts_root(artifacts)
    database = ArtifactPaths(root).database
    if database.is_file():
        try:
            config = api.config(artifacts=root)
        except api.ApiError as exc:
            raise fail(str(exc)) from None
        source = f"the seeds of {database}"
    else:
        config = _from_seed_files()
        source = f"{SEEDS} (no database at {database})"
    if fmt is None:
        fmt = (
            Format.json if output is not None and output.suffix.lower() == ".json" else Format.yaml
        )
    text = dump_config(config, fmt.value)
    if output is None:
        out.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        err.print(f"config of {source}", highlight=False)
        return
    with atomic_path(output) as tmp:  # a reader never finds half a config
        tmp.write_text(text)
    err.print(f"wrote {output}: the config of {source}", highlight=False)
