"""Manifests shipped with the package, usable by a short name.

``iqb cache pull mlab`` reads M-Lab's published cache manifest
(``mlab-bucket-manifest.json``: 4,900 files, 205 months 2009-01 .. 2026-01,
every granularity, public HTTPS URLs of M-Lab's bucket) without BigQuery or a
Google account. A file or URL of the same name wins over the short name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

KNOWN: dict[str, str] = {"mlab": "mlab-bucket-manifest.json"}


def resolve_manifest(source: str) -> str:
    """The packaged manifest's path for a short name; anything else unchanged."""
    if source in KNOWN and not Path(source).exists():
        return str(resources.files("extract.extraction.manifests").joinpath(KNOWN[source]))
    return source
