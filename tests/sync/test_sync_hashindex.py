"""The hash index: unchanged files are not re-read, racily-fresh files always are."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import date
from pathlib import Path

import pytest

import extract.cache.hashindex as hashindex
from extract.cache.hashindex import HashIndex
from extract.cache.layout import Entry
from extract.datasets import DATASETS
from extract.paths import HASH_INDEX
from extract.sync.compare import FileState, Selection, compare
from extract.sync.manifest import FileRecord, Manifest

HOUR_NS = 3600 * 10**9


def _write(path: Path, data: bytes, age_ns: int = HOUR_NS) -> int:
    """Write a file and date it ``age_ns`` in the past; return its mtime_ns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    mtime = time.time_ns() - age_ns
    os.utime(path, ns=(mtime, mtime))
    return mtime


def _rewrite_keeping_stat(path: Path, data: bytes, mtime_ns: int) -> None:
    assert len(data) == path.stat().st_size
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_unchanged_size_and_mtime_reuse_the_stored_hash(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    mtime = _write(path, b"a" * 100)
    index = HashIndex(tmp_path)
    index.sha256("f", path)
    index.save()
    # Same size, same mtime, other bytes: only a full read can tell, and the index does not read.
    _rewrite_keeping_stat(path, b"b" * 100, mtime)
    reloaded = HashIndex(tmp_path)
    assert reloaded.sha256("f", path) == hashlib.sha256(b"a" * 100).hexdigest()
    assert reloaded.rehash("f", path) == hashlib.sha256(b"b" * 100).hexdigest()


def test_a_fresh_file_is_hashed_again_even_with_the_same_stat(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    mtime = _write(path, b"a" * 100, age_ns=0)  # written "now": racily clean
    index = HashIndex(tmp_path)
    index.sha256("f", path)
    _rewrite_keeping_stat(path, b"b" * 100, mtime)
    assert index.sha256("f", path) == hashlib.sha256(b"b" * 100).hexdigest()


def test_size_or_mtime_change_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    _write(path, b"a" * 100)
    index = HashIndex(tmp_path)
    index.sha256("f", path)
    _write(path, b"a" * 101)
    assert index.sha256("f", path) == hashlib.sha256(b"a" * 101).hexdigest()
    _write(path, b"c" * 101, age_ns=2 * HOUR_NS)
    assert index.sha256("f", path) == hashlib.sha256(b"c" * 101).hexdigest()


def test_corrupt_index_is_ignored_and_rewritten(tmp_path: Path) -> None:
    (tmp_path / HASH_INDEX).parent.mkdir(parents=True)
    (tmp_path / HASH_INDEX).write_text("{garbage")
    path = tmp_path / "f.bin"
    _write(path, b"x")
    index = HashIndex(tmp_path)
    assert index.sha256("f", path) == hashlib.sha256(b"x").hexdigest()
    index.save()
    assert '"v":2' in (tmp_path / HASH_INDEX).read_text()


def test_a_file_moved_over_with_the_same_stat_is_hashed_again(tmp_path: Path) -> None:
    """`mv` / `cp -p` keep size and mtime; only the inode tells that the file changed."""
    path, other = tmp_path / "f.bin", tmp_path / "g.bin"
    mtime = _write(path, b"a" * 100)
    index = HashIndex(tmp_path)
    index.sha256("f", path)
    index.save()
    _write(other, b"b" * 100)
    os.utime(other, ns=(mtime, mtime))
    os.replace(other, path)  # same size, same mtime, another inode
    assert HashIndex(tmp_path).sha256("f", path) == hashlib.sha256(b"b" * 100).hexdigest()


def test_an_index_that_cannot_be_saved_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the index's folder should be")
    path = tmp_path / "f.bin"
    _write(path, b"x")
    index = HashIndex(tmp_path)
    assert index.sha256("f", path) == hashlib.sha256(b"x").hexdigest()
    assert index.save() is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "state"]


def test_status_over_thousands_of_unchanged_files_reads_none(
    artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    months = [date(2009 + i // 12, i % 12 + 1, 1) for i in range(126)]
    manifest = Manifest()
    for i, start in enumerate(months):
        end = months[i + 1] if i + 1 < len(months) else date(2019, 7, 1)
        for ds in DATASETS:
            for name in ("data.parquet", "stats.json"):
                key = f"{Entry(ds, start, end).key}/{name}"
                data = key.encode()
                _write(artifacts / key, data)
                manifest.files[key] = FileRecord(hashlib.sha256(data).hexdigest(), "https://x")
    assert len(manifest.files) == 3024
    reads: list[Path] = []
    real = hashindex.file_sha256

    def counted(path: Path) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(hashindex, "file_sha256", counted)

    first = HashIndex(artifacts)
    assert {d.state for d in compare(manifest, artifacts, first, Selection())} == {FileState.SAME}
    first.save()
    assert len(reads) == 3024

    reads.clear()
    t0 = time.monotonic()
    again = compare(manifest, artifacts, HashIndex(artifacts), Selection())
    elapsed = time.monotonic() - t0
    assert {d.state for d in again} == {FileState.SAME}
    assert reads == []  # not one byte of data re-read
    assert elapsed < 10
