"""Sync integrity against fake-gcs-server: synthetic never published as real, the
environment beats .env, no secret in any message or log, no temp file outlives a
pull, a dead host fails at once, odd artifacts paths work."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extract.cache.store import lock_for_file
from extract.paths import MANIFEST
from extract.sync.manifest import parse_manifest
from extract.sync.pull import pull
from extract.sync.push import push
from extract.sync.remote import GcsRemote, SyncError, Transfer
from extract.sync.source import load_manifest, source_for
from tests.conftest import REAL_CACHE, REPO
from tests.sync.helpers import DEMO_CONFIG, Bucket, fake_gcs, iqb, tree

FAST = Transfer(connect_timeout=2, read_timeout=10, retry_deadline=2)
SCRIPT = str(REPO / "sync_artifacts.sh")
OCT = "cache/v1/20241001T000000Z/20241101T000000Z"


def test_synthetic_entries_are_refused_unless_allowed(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    for cmd in (
        [SCRIPT, "--artifacts", str(demo)],
        [str(Path(iqb.__globals__["IQB"])), "sync", "push", "--artifacts", str(demo)],
    ):
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "24 cache entries are synthetic" in proc.stderr
        listed = [line for line in proc.stderr.splitlines() if line.startswith("  - cache/v1/")]
        assert len(listed) == 10 and "... and 14 more" in proc.stderr  # named, not flooded
        assert "--allow-synthetic" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert bucket.objects() == {}
    proc = iqb("sync", "push", "--dry-run", "--artifacts", str(demo))
    assert proc.returncode == 2 and "synthetic" in proc.stderr
    # real (upstream) entries are not synthetic: they go without the flag
    real = tmp_path / "real"
    shutil.copytree(REAL_CACHE, real / "cache")
    proc = subprocess.run(
        [SCRIPT, "--artifacts", str(real)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "uploaded 4 file(s)" in proc.stdout
    # a mart built from synthetic entries that have since left the cache is refused too
    mart = real / "marts/quality_by_country/period=2024-09-01_2024-10-01/data_0.parquet"
    mart.parent.mkdir(parents=True)
    pq.write_table(pa.table({"country_code": ["ZA", "BR"], "is_synthetic": [False, True]}), mart)
    proc = iqb("sync", "push", "--artifacts", str(real))
    assert proc.returncode == 2, proc.stderr
    assert "1 mart file(s) hold rows built from synthetic entries" in proc.stderr
    assert "  - marts/quality_by_country/period=2024-09-01_2024-10-01/data_0.parquet" in proc.stderr
    pq.write_table(pa.table({"country_code": ["ZA"], "is_synthetic": [False]}), mart)
    assert iqb("sync", "push", "--artifacts", str(real)).returncode == 0
    proc = subprocess.run(
        [SCRIPT, "--allow-synthetic", "--artifacts", str(demo)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "uploaded 48 file(s)" in proc.stdout


def test_the_environment_beats_dotenv_and_dry_run_names_the_target(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("GCP_PROJECT=from-dotenv\nGCP_BUCKET=bucket-a-from-dotenv\n")
    proc = subprocess.run(
        [SCRIPT, "--allow-synthetic", "--dry-run", "--artifacts", str(demo)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        f"dry run: would push {demo} to gs://{bucket.name} (bucket from environment), "
        "project iqb-test (from environment)"
    ) in proc.stdout
    proc = subprocess.run(
        [SCRIPT, "--allow-synthetic", "--artifacts", str(demo)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"/{bucket.name}/state/manifest.json" in proc.stdout and "bucket-a" not in proc.stdout
    assert len(bucket.objects()) == 50  # 48 files, the manifest and its kept copy, there
    # without the environment, .env is used (and the dry run says so)
    env = {k: v for k, v in os.environ.items() if k not in ("GCP_BUCKET", "GCP_PROJECT")}
    (tmp_path / ".env").write_text(f"GCP_PROJECT=from-dotenv\nGCP_BUCKET={bucket.name}\n")
    proc = subprocess.run(
        [SCRIPT, "--allow-synthetic", "--dry-run", "--artifacts", str(demo)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "250"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "(bucket from .env), project from-dotenv (from .env)" in proc.stdout


def test_no_secret_in_any_message_or_log(demo: Path, bucket: Bucket, tmp_path: Path) -> None:
    push(demo, GcsRemote.from_env(FAST), allow_synthetic=True)
    manifest = parse_manifest(
        bucket.client.bucket(bucket.name).blob(MANIFEST).download_as_bytes(), "m"
    )
    host = bucket.server.removeprefix("http://")
    # every URL with credentials: user-info and token parameters (the server ignores them)
    doc: dict[str, Any] = {
        "v": 0,
        "files": {
            k: {
                "sha256": r.sha256,
                "size": r.size,
                "url": r.url.replace("http://", "http://alice:pw-SECRET1@")
                + "?access_token=tok-SECRET2&X-Goog-Signature=sig-SECRET3",
            }
            for k, r in manifest.files.items()
        },
    }
    # and one file whose bytes are wrong, so that its URL appears in an error message
    first = sorted(doc["files"])[0]
    doc["files"][first]["sha256"] = "0" * 64
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    other = tmp_path / "other"
    proc = iqb("cache", "pull", str(path), "--allow-http", "--artifacts", str(other))
    assert proc.returncode == 1
    assert f"failed {first}" in proc.stderr and "http://***@" in proc.stderr
    logs = "".join(p.read_text() for p in (other / "state" / "logs").glob("*.jsonl"))
    assert "access_token=***" in logs
    for text in (proc.stdout, proc.stderr, logs):
        assert "SECRET" not in text
    # a manifest URL with credentials, on a dead port: the message names it, masked
    proc = iqb(
        "cache",
        "pull",
        f"http://bob:pw-SECRET4@{host.split(':')[0]}:9/m.json?token=SECRET5",
        "--allow-http",
        "--artifacts",
        str(other),
    )
    assert proc.returncode == 2 and "http://***@127.0.0.1:9/m.json?token=***" in proc.stderr
    assert "SECRET" not in proc.stderr + proc.stdout


def test_a_killed_pull_leaves_no_temp_file_after_the_next_one(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    (demo / "marts").mkdir()
    (demo / "marts" / "quality_by_country.parquet").write_bytes(os.urandom(4096))
    (demo / "read_only").mkdir()
    (demo / "read_only" / "iqb_20241101T000000Z.duckdb").write_bytes(os.urandom(4096))
    push(demo, GcsRemote.from_env(FAST), allow_synthetic=True)
    other = tmp_path / "other"
    # what a pull killed mid-write leaves (atomic_path's hidden temp names), in each tree
    leftovers = [
        other / "marts" / ".quality_by_country.parquet.k1ll3d01.tmp",
        other / "read_only" / ".iqb_20241101T000000Z.duckdb.k1ll3d02.tmp",
        other / OCT / "uploads_by_country" / ".data.parquet.k1ll3d03.tmp",
        other / "marts" / ".some_old_mart.parquet.k1ll3d04.tmp",
    ]  # no longer listed
    for p in leftovers:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half a file")
    # one temp file belongs to a writer that is running right now: it must be kept
    busy = other / "marts" / ".busy.parquet.r4nn1ng0.tmp"
    busy.write_bytes(b"being written")
    with lock_for_file(other / "marts" / "busy.parquet", other):
        proc = iqb("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(other))
    assert proc.returncode == 0, proc.stderr
    assert [p for p in leftovers if p.exists()] == []
    assert busy.exists()
    busy.unlink()

    def published(root: Path) -> dict[str, bytes]:
        return {k: v for k, v in tree(root, "").items() if not k.startswith("state/")}

    assert published(other) == published(demo)  # and so no hidden temp file anywhere


def test_a_dead_or_unknown_host_fails_a_pull_within_seconds(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_gcs() as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        monkeypatch.setenv("GCP_PROJECT", "iqb-test")
        monkeypatch.setenv("GCP_BUCKET", "dead")
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        storage.Client(project="iqb-test", credentials=AnonymousCredentials()).create_bucket("dead")
        push(demo, GcsRemote.from_env(FAST), allow_synthetic=True)
        manifest_file = tmp_path / "m.json"
        manifest_file.write_bytes(
            storage.Client(project="iqb-test", credentials=AnonymousCredentials())
            .bucket("dead")
            .blob(MANIFEST)
            .download_as_bytes()
        )
        server.stop()
    # default retry deadline (30 s per file, 48 files): the dead host is found once, at once
    t0 = time.monotonic()
    proc = iqb(
        "cache", "pull", str(manifest_file), "--allow-http", "--artifacts", str(tmp_path / "other")
    )
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 2
    assert proc.stderr.count("error:") == 1 and "Connection refused" in proc.stderr
    assert "nothing was downloaded" in proc.stderr
    assert not (tmp_path / "other" / "cache").exists()

    # a name that does not resolve (DNS is not on loopback: the resolver's answer is injected)
    def no_such_host(*_args: object, **_kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    reader = source_for(str(manifest_file), FAST, allow_http=True)
    loaded = load_manifest(str(manifest_file), reader)
    t0 = time.monotonic()
    with pytest.raises(SyncError, match=r"cannot resolve host 127\.0\.0\.1: Name or service"):
        pull(tmp_path / "other2", loaded, reader, FAST)
    assert time.monotonic() - t0 < 2


def test_pull_refuses_a_stats_json_that_is_not_an_object(
    bucket: Bucket, artifacts: Path, tmp_path: Path
) -> None:
    shutil.copytree(REAL_CACHE, artifacts / "cache")
    (artifacts / OCT / "uploads_by_country" / "stats.json").write_text("[1, 2]")
    push(artifacts, GcsRemote.from_env(FAST))
    other = tmp_path / "other"
    proc = iqb("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(other))
    assert proc.returncode == 1
    assert "stats.json: the manifest's file is not a JSON object" in proc.stderr
    assert not (other / OCT / "uploads_by_country").exists() or not any(
        (other / OCT / "uploads_by_country").iterdir()
    )
    assert (other / OCT / "downloads_by_country" / "data.parquet").exists()


ODD = "it's {odd} [dir] $HOME"


def test_artifacts_paths_with_quotes_braces_and_spaces_work(bucket: Bucket, tmp_path: Path) -> None:
    root = tmp_path / ODD / "artifacts"
    for args in (
        ["sample", "-c", str(DEMO_CONFIG), "--rows", "5000"],
        ["extract", "run", "-c", str(DEMO_CONFIG)],
        ["cache", "status", "-c", str(DEMO_CONFIG)],
        ["cache", "verify"],
        ["cache", "usage"],
        ["sync", "push", "--allow-synthetic"],
    ):
        proc = iqb(*args, "--artifacts", str(root))
        assert proc.returncode == 0, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert (
        "24 present"
        in iqb("cache", "status", "-c", str(DEMO_CONFIG), "--artifacts", str(root)).stdout
    )
    other = tmp_path / f"{ODD} 2" / "artifacts"
    proc = iqb("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(other))
    assert proc.returncode == 0, proc.stderr
    assert tree(other) == tree(root)
    proc = iqb("cache", "status", "-c", str(DEMO_CONFIG), "--json", "--artifacts", str(other))
    assert json.loads(proc.stdout)["counts"] == {"present": 24}


def test_a_pull_over_hand_copied_upstream_files_records_them_as_verified(artifacts: Path) -> None:
    """M-Lab's real entries copied in by hand are unverified; a pull of M-Lab's real
    manifest finds them with its hashes (nothing to download, no network) and records it."""
    shutil.copytree(REAL_CACHE, artifacts / "cache")
    config = REPO / "pipeline.demo.yaml"
    before = json.loads(
        iqb("cache", "status", "-c", str(config), "--json", "--artifacts", str(artifacts)).stdout
    )["counts"]
    assert before == {"unverified": 2, "missing": 22}
    proc = iqb(
        "cache",
        "pull",
        str(REPO / "tests/fixtures/manifests/mlab-bucket-manifest.json"),
        "--granularity",
        "country",
        "--start",
        "2024-10",
        "--end",
        "2024-11",
        "--artifacts",
        str(artifacts),
    )
    assert proc.returncode == 0, proc.stderr
    assert "downloaded 0 file(s), 0.0 MB; 4 already here" in proc.stdout
    after = json.loads(
        iqb("cache", "status", "-c", str(config), "--json", "--artifacts", str(artifacts)).stdout
    )["counts"]
    assert after == {"present": 2, "missing": 22}
    assert tree(artifacts) == {
        f"cache/{p.relative_to(REAL_CACHE).as_posix()}": p.read_bytes()
        for p in REAL_CACHE.rglob("*")
        if p.is_file()
    }  # untouched
