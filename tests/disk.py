"""Real disk faults for tests: a small tmpfs, remounted read-only or filled to the last byte.

Mounting needs root (CAP_SYS_ADMIN); where it is not allowed the test is skipped
with the reason, instead of faking the fault. As root, chmod cannot make a
tree read-only (root ignores permissions), a read-only mount can.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64m") -> Iterator[Path]:
    """A fresh tmpfs of ``size`` at ``path``, unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)


def fill(path: Path) -> None:
    """Write zeros under ``path`` until the filesystem says ENOSPC: no byte left."""
    block = b"\0" * 65536
    with open(path / "filler", "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
    with contextlib.suppress(OSError):
        os.sync()
