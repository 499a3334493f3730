"""Every country's score at another percentile, or with another config, with no rebuild.

A researcher exploring the score asks the API for every country and period at
another percentile, or with edited thresholds; the figures say what that costs
next to reading the scores the build wrote:

- ``read``: ``api.scores("country")``, the score view at the build's percentile;
- ``percentile``: ``api.scores("country", percentile=50)``, the all-percentiles
  view filtered to one percentile (SQL, in DuckDB);
- ``config``: ``api.scores("country", percentile=50, config=...)``, the quality rows
  scored in Python with upstream's config (the database's own, so the same work
  as any edited one).

Each is the median over ``repeats`` of one call, every period of the database.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from bench.questions import timed
from extract.results import api

PERCENTILE = 50


def rescore_timings(artifacts: Path, repeats: int) -> dict[str, float]:
    """Seconds of each way (keys ``read``, ``percentile``, ``config``), and ``rows``."""
    config = api.config(artifacts=artifacts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", api.SyntheticDataWarning)  # the bench data are synthetic
        rows = len(api.scores("country", artifacts=artifacts))
        return {
            "rows": rows,
            "read": timed(repeats, lambda: api.scores("country", artifacts=artifacts)),
            "percentile": timed(
                repeats,
                lambda: api.scores("country", percentile=PERCENTILE, artifacts=artifacts),
            ),
            "config": timed(
                repeats,
                lambda: api.scores(
                    "country", percentile=PERCENTILE, config=config, artifacts=artifacts
                ),
            ),
        }
