"""The ``iqb`` command: sample, extract, cache, sync, report, config.

Each sub-command is a thin shell over a module that does the work, so the same
logic is reachable from Python and from tests without a terminal. This package
holds one small module per command group (sample, extract_run, cache, sync,
report, config); here they are put together, in the order --help lists them.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from extract.cli.cache import cache_app
from extract.cli.common import err, out
from extract.cli.config import config_app
from extract.cli.extract_run import extract_app, pipeline_app
from extract.cli.report import report
from extract.cli.sample import sample
from extract.cli.sync import sync_app

app = typer.Typer(
    help="IQB data workspace: M-Lab NDT measurements -> Parquet cache -> dbt.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(sample)
app.command()(report)
app.add_typer(extract_app, name="extract")
app.add_typer(cache_app, name="cache")
app.add_typer(sync_app, name="sync")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(config_app, name="config")


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
