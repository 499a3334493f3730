"""Suite-wide safety: nothing in the tests may reach beyond loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# google-auth probes the GCE metadata server unless told not to; dbt calls home.
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:9")
os.environ.setdefault("GCE_METADATA_IP", "127.0.0.1:9")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# rich wraps at 80 columns when not on a terminal; tests read whole lines.
os.environ["COLUMNS"] = "200"

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
REAL_CACHE = FIXTURES / "cache"  # cache/v1/20241001T000000Z/20241101T000000Z/...
REAL_MANIFESTS = FIXTURES / "manifests"


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty artifacts root, also exported as IQB_ARTIFACTS for subprocesses."""
    root = tmp_path / "artifacts"
    root.mkdir()
    monkeypatch.setenv("IQB_ARTIFACTS", str(root))
    return root
