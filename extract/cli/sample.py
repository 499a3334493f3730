"""``iqb sample``: synthetic raw data, so the workspace runs with no cloud account.

The generator is extract/extraction/sample/generate.py; this module only picks the months
(from --months or the matrix) and prints what was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from extract.cli.common import artifacts_root, disk_errors, err, fail, load_or_exit, out
from extract.cli.options import ArtifactsOpt, ConfigOpt
from extract.extraction.sample.generate import DEFAULT_ROWS


@disk_errors
def sample(
    config: ConfigOpt = Path("pipeline.demo.yaml"),
    months: Annotated[
        str | None,
        typer.Option(
            help="Months to write, 'YYYY-MM..YYYY-MM' (default: every month of --config)."
        ),
    ] = None,
    rows: Annotated[
        int,
        typer.Option(
            help="Download rows per month (uploads follow the real upload/download ratio).",
            min=1000,
        ),
    ] = DEFAULT_ROWS,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Write a synthetic raw sample calibrated to M-Lab's real October 2024 data."""
    from extract.extraction.matrix import parse_month_range
    from extract.extraction.sample.generate import month_range, write_sample

    if months:
        periods, problems = parse_month_range(months, "--months")
        if problems:
            raise fail("; ".join(problems), 2)
        wanted = [p.start for p in periods]
    else:
        matrix = load_or_exit(config)
        wanted = sorted(
            {m for p in matrix.periods for m in month_range(p.start, p.end) if m < p.end}
        )
    root = artifacts_root(artifacts)
    with err.status(f"writing {len(wanted)} month(s) of synthetic measurements..."):
        written = write_sample(root, wanted, rows=rows, seed=seed)
    for path, n in written:
        out.print(f"{n:>10,} rows  {path}")
