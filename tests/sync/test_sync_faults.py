"""A read-only or full disk: one clear error, no traceback, nothing partial left visible.

Real faults: a tmpfs remounted read-only, or filled to the last byte (tests/disk.py),
with the real CLI in a subprocess, against fake-gcs-server for push and pull.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from extract.sync.push import push
from extract.sync.remote import GcsRemote
from tests.conftest import REAL_CACHE
from tests.disk import fill, read_only, tmpfs
from tests.sync.helpers import DEMO_CONFIG, FAST, Bucket, iqb


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk") as mount:
        yield mount


def one_clear_error(proc: subprocess.CompletedProcess[str], what: str, where: Path) -> None:
    """Exit 1, one `error:` line naming the problem and a file under ``where``."""
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert not [line for line in proc.stderr.splitlines() if "failed" in line], proc.stderr
    assert what in errors[0] and f"cannot write {where}/" in errors[0], errors[0]
    assert ".tmp" not in errors[0]  # the file the user knows, not a hidden temp name


def visible_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and "state" not in p.parts
    }


def hidden_temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*.tmp")]


def with_content(disk: Path, demo_cache: Path) -> Path:
    """Artifacts on the test disk: the demo cache, with M-Lab's real October country entries
    in place of the demo's (upstream's format: unverified until verified)."""
    root = disk / "artifacts"
    shutil.copytree(demo_cache / "cache", root / "cache")
    shutil.copytree(REAL_CACHE, root / "cache", dirs_exist_ok=True)
    return root


def test_read_only_tree(disk: Path, demo_cache: Path, bucket: Bucket) -> None:
    root = with_content(disk, demo_cache)
    push(root, GcsRemote.from_env(FAST), allow_synthetic=True)  # something to pull later
    shutil.rmtree(root / "state")
    before = visible_files(root)
    read_only(disk)
    what = "Read-only file system"

    one_clear_error(
        iqb("sample", "-c", str(DEMO_CONFIG), "--rows", "5000", "--artifacts", str(root)),
        what,
        root,
    )
    one_clear_error(
        iqb("extract", "run", "-c", str(DEMO_CONFIG), "--force", "--artifacts", str(root)),
        what,
        root,
    )
    one_clear_error(
        iqb(
            "cache",
            "pull",
            bucket.manifest_http,
            "--allow-http",
            "--force",
            "--artifacts",
            str(root),
        ),
        what,
        root,
    )
    one_clear_error(iqb("sync", "push", "--allow-synthetic", "--artifacts", str(root)), what, root)
    # verify only reads: it gives its full result, and says the hashes could not be kept
    proc = iqb("cache", "verify", "--artifacts", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "24 entries: 22 present, 0 newly verified, 2 unverified, 0 corrupt" in proc.stdout
    assert "could not record hashes" in proc.stderr and "Read-only file system" in proc.stderr
    proc = iqb("cache", "status", "-c", str(DEMO_CONFIG), "--artifacts", str(root))
    assert proc.returncode == 0 and "22 present, 2 unverified" in proc.stdout, proc.stderr
    assert visible_files(root) == before


def test_full_disk(disk: Path, tmp_path: Path, demo_cache: Path, bucket: Bucket) -> None:
    # the raw sample first (fits), then no byte left for anything else
    root = disk / "artifacts"
    proc = iqb("sample", "-c", str(DEMO_CONFIG), "--rows", "5000", "--artifacts", str(root))
    assert proc.returncode == 0, proc.stderr
    other = tmp_path / "elsewhere"  # a full tree to push from, and to pull into the disk
    shutil.copytree(demo_cache / "cache", other / "cache")
    push(other, GcsRemote.from_env(FAST), allow_synthetic=True)
    fill(disk)
    what = "No space left on device"

    one_clear_error(
        iqb(
            "sample",
            "-c",
            str(DEMO_CONFIG),
            "--rows",
            "5000",
            "--seed",
            "2",
            "--artifacts",
            str(root),
        ),
        what,
        root,
    )
    one_clear_error(
        iqb("extract", "run", "-c", str(DEMO_CONFIG), "--artifacts", str(root)), what, root
    )
    one_clear_error(
        iqb("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(root)),
        what,
        root,
    )
    assert not (root / "cache").exists() or not any((root / "cache").rglob("*.parquet"))
    assert hidden_temp_files(root) == []

    # push and verify from a full disk: what they must write does not fit either
    full = disk / "full"
    (disk / "filler").unlink()
    shutil.copytree(demo_cache / "cache", full / "cache")
    fill(disk)
    one_clear_error(iqb("sync", "push", "--allow-synthetic", "--artifacts", str(full)), what, full)
    proc = iqb("cache", "verify", "--artifacts", str(full))
    assert proc.returncode == 0 and "24 entries: 24 present" in proc.stdout, proc.stderr
    assert hidden_temp_files(disk) == []
