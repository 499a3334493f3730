"""The manifest format and key safety, without a server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from extract.cache.hashindex import file_sha256
from extract.sync.manifest import (
    FileRecord,
    Manifest,
    ManifestError,
    key_problem,
    parse_manifest,
    publishable_files,
)
from tests.conftest import REAL_CACHE, REAL_MANIFESTS
from tests.sync.helpers import iqb, tree

OCT = "cache/v1/20241001T000000Z/20241101T000000Z"
SHA = "0" * 64


def test_real_mlab_manifest_is_accepted_as_is() -> None:
    path = REAL_MANIFESTS / "mlab-bucket-manifest.json"
    manifest = parse_manifest(path.read_bytes(), str(path))
    assert len(manifest.files) == 4900
    rec = manifest.files[f"{OCT}/downloads_by_country/data.parquet"]
    assert rec.size is None  # upstream has no size; still accepted
    assert rec.sha256 == file_sha256(
        REAL_CACHE / "v1/20241001T000000Z/20241101T000000Z" / "downloads_by_country/data.parquet"
    )
    assert rec.url.startswith("https://storage.googleapis.com/")


def test_github_release_manifest_is_accepted() -> None:
    path = REAL_MANIFESTS / "github-release-manifest-2024-10.json"
    assert len(parse_manifest(path.read_bytes(), str(path)).files) == 4


@pytest.mark.parametrize(
    "key",
    [
        "/etc/passwd",
        "../outside/data.parquet",
        f"{OCT}/../../../../etc/data.parquet",
        f"{OCT}/downloads_by_country/../uploads_by_country/data.parquet",
        "C:\\windows\\data.parquet",
        f"{OCT}\\downloads_by_country\\data.parquet",
        f"{OCT}/downloads_by_nowhere/data.parquet",
        f"{OCT}/downloads_by_country/other.parquet",
        "cache/v1/20241101T000000Z/20241001T000000Z/downloads_by_country/data.parquet",
        f"./{OCT}/downloads_by_country/data.parquet",
        f"{OCT}//downloads_by_country/data.parquet",
        "state/manifest.json",
        "raw/unified_downloads/2024-10.parquet",
        "iqb.duckdb",
        "read_only/iqb.duckdb",
        "marts/../x.parquet",
        "marts/.hidden.parquet",
        "",
    ],
)
def test_unsafe_or_unknown_keys_are_rejected(key: str) -> None:
    assert key_problem(key) is not None
    doc = {"v": 0, "files": {key: {"sha256": SHA, "url": "https://example.org/x"}}}
    with pytest.raises(ManifestError, match="manifest-under-test"):
        parse_manifest(json.dumps(doc).encode(), "manifest-under-test")


@pytest.mark.parametrize(
    "key",
    [
        f"{OCT}/downloads_by_country/data.parquet",
        f"{OCT}/uploads_by_country_city_asn/stats.json",
        "read_only/iqb_20250101T120000Z.duckdb",
        "marts/quality_by_country.parquet",
        "marts/quality_by_city/period_start=2024-10-01/data_0.parquet",
    ],
)
def test_known_layout_keys_are_accepted(key: str) -> None:
    assert key_problem(key) is None


def test_every_problem_is_reported_at_once() -> None:
    doc = {
        "v": 1,
        "files": {
            "../a": {"sha256": SHA, "url": "https://x"},
            f"{OCT}/downloads_by_country/data.parquet": {"sha256": "ABC", "url": ""},
            f"{OCT}/uploads_by_country/data.parquet": {
                "sha256": SHA,
                "url": "https://x",
                "size": -1,
            },
        },
    }
    with pytest.raises(ManifestError) as info:
        parse_manifest(json.dumps(doc).encode(), "m.json")
    text = str(info.value)
    assert "m.json" in text and "nothing was written" in text
    assert "v is 1" in text and "'..'" in text and "sha256" in text and "url is missing" in text
    assert "size" in text
    assert len(info.value.problems) == 5


@pytest.mark.parametrize("data", [b"{not json", b"[]", b'{"v": 0}', b"\xff\xfe"])
def test_garbage_is_a_manifest_error(data: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(data, "bad.json")


def test_dumps_is_deterministic_and_round_trips() -> None:
    manifest = Manifest(
        {
            f"{OCT}/uploads_by_country/stats.json": FileRecord(SHA, "https://x/b", 10),
            f"{OCT}/downloads_by_country/data.parquet": FileRecord("1" * 64, "https://x/a"),
        }
    )
    data = manifest.dumps()
    doc = json.loads(data)
    assert doc["v"] == 0 and list(doc["files"]) == sorted(doc["files"])
    assert "size" not in doc["files"][f"{OCT}/downloads_by_country/data.parquet"]
    assert parse_manifest(data, "x").dumps() == data


def test_publishable_files_skip_temp_raw_state_and_live_database(artifacts: Path) -> None:
    shutil.copytree(REAL_CACHE, artifacts / "cache")
    entry = artifacts / OCT / "downloads_by_country"
    (entry / ".data.parquet.abc.tmp").write_bytes(b"partial")
    for other in (
        "raw/unified_downloads/2024-10.parquet",
        "state/manifest.json",
        "iqb.duckdb",
        "read_only/notes.txt",
    ):
        (artifacts / other).parent.mkdir(parents=True, exist_ok=True)
        (artifacts / other).write_bytes(b"x")
    (artifacts / "read_only/iqb_20250101T000000Z.duckdb").write_bytes(b"db")
    (artifacts / "marts").mkdir()
    (artifacts / "marts/quality_by_country.parquet").write_bytes(b"pq")
    assert sorted(publishable_files(artifacts)) == sorted(
        [
            f"{OCT}/downloads_by_country/data.parquet",
            f"{OCT}/downloads_by_country/stats.json",
            f"{OCT}/uploads_by_country/data.parquet",
            f"{OCT}/uploads_by_country/stats.json",
            "marts/quality_by_country.parquet",
            "read_only/iqb_20250101T000000Z.duckdb",
        ]
    )


def test_pull_with_traversal_keys_writes_nothing(artifacts: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.json"
    evil.write_text(
        json.dumps(
            {
                "v": 0,
                "files": {
                    "../../escaped.txt": {"sha256": SHA, "url": "https://example.org/a"},
                    f"{OCT}/downloads_by_country/data.parquet": {
                        "sha256": SHA,
                        "url": "https://example.org/b",
                    },
                },
            }
        )
    )
    proc = iqb("cache", "pull", str(evil), "--artifacts", str(artifacts))
    assert proc.returncode == 2
    assert "'../../escaped.txt': contains '..'" in proc.stderr and str(evil) in proc.stderr
    assert list(artifacts.rglob("*")) == []
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_unparsable_manifest_leaves_local_files_untouched(artifacts: Path, tmp_path: Path) -> None:
    shutil.copytree(REAL_CACHE, artifacts / "cache")

    def snapshot() -> dict[Path, tuple[int, bytes]]:
        return {
            p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in artifacts.rglob("*")
        }

    before = snapshot()
    broken = tmp_path / "broken.json"
    broken.write_text('{"v": 0, "files": {')
    for args in (
        ["cache", "pull", str(broken), "--force"],
        ["cache", "verify", str(broken)],
        ["cache", "status", "--manifest", str(broken)],
    ):
        proc = iqb(*args, "--artifacts", str(artifacts))
        assert proc.returncode == 2, args
        assert "not JSON" in proc.stderr and str(broken) in proc.stderr
    assert snapshot() == before  # nothing written, nothing touched, not even state/
    assert len(tree(artifacts)) == 4
