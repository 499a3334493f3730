"""Push and pull against a real GCS API (fake-gcs-server on loopback, real client)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Unpack

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from extract.paths import MANIFEST
from extract.sync.manifest import Manifest, parse_manifest
from extract.sync.pull import PullReport, pull
from extract.sync.push import PushReport, push
from extract.sync.remote import ConflictError, GcsRemote, SyncError
from extract.sync.source import load_manifest, source_for
from tests.conftest import REAL_CACHE, REAL_MANIFESTS, REPO
from tests.sync.helpers import (
    DEMO_CONFIG,
    FAST,
    IQB,
    Bucket,
    PushOptions,
    fake_gcs,
    iqb,
    tree,
)

SCRIPT = str(REPO / "sync_artifacts.sh")
OCT = "cache/v1/20241001T000000Z/20241101T000000Z"
SEP = "cache/v1/20240901T000000Z/20241001T000000Z"


def do_push(root: Path, **options: Unpack[PushOptions]) -> PushReport:
    """Push; the demo cache is synthetic, which these tests publish on purpose."""
    return push(root, GcsRemote.from_env(FAST), jobs=4, allow_synthetic=True, **options)


def do_pull(root: Path, bucket: Bucket) -> PullReport:
    reader = source_for(bucket.manifest_http, FAST, allow_http=True)
    manifest = load_manifest(bucket.manifest_http, reader)
    return pull(root, manifest, reader, FAST, jobs=4)


def published(bucket: Bucket) -> Manifest:
    """The bucket's manifest, checked the way any reader would: every URL, every byte."""
    data = requests.get(bucket.manifest_http, timeout=5).content
    manifest = parse_manifest(data, bucket.manifest_http)
    for key, rec in manifest.files.items():
        body = requests.get(rec.url, timeout=5)
        assert body.status_code == 200, key
        assert hashlib.sha256(body.content).hexdigest() == rec.sha256, key
        assert len(body.content) == rec.size, key
    return manifest


def spans(log: Path | None) -> list[dict]:
    assert log is not None, "the run wrote no span log"
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_push_then_pull_into_an_empty_directory_is_byte_identical(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    report = do_push(demo)
    assert report.created == 48 and report.published
    manifest = published(bucket)
    assert sorted(manifest.files) == sorted(tree(demo))
    assert all(
        r.url.startswith(f"{bucket.server}/{bucket.name}/objects/") for r in manifest.files.values()
    )
    assert (demo / MANIFEST).read_bytes() == requests.get(bucket.manifest_http).content
    push_spans = spans(report.log)
    assert len(push_spans) == 50 and all(s["ok"] for s in push_spans)
    assert {s["op"] for s in push_spans} == {"upload", "keep", "publish"}
    assert all(s["start"] <= s["end"] for s in push_spans)

    other = tmp_path / "elsewhere"
    pulled = do_pull(other, bucket)
    assert tree(other) == tree(demo)
    assert len(pulled.downloaded) == 48 and not pulled.failures
    pull_spans = spans(pulled.log)
    assert sum(s["bytes"] for s in pull_spans) == sum(len(b) for b in tree(demo).values())


def test_second_push_uploads_nothing_and_publishes_nothing(demo: Path, bucket: Bucket) -> None:
    do_push(demo)
    generation = bucket.manifest_generation()
    objects = bucket.objects()
    again = do_push(demo)
    assert (again.created, again.reused, len(again.uploads), again.unchanged) == (0, 0, 0, 48)
    assert not again.published
    assert bucket.manifest_generation() == generation
    assert bucket.objects() == objects


def test_one_changed_file_uploads_only_it_and_never_overwrites(demo: Path, bucket: Bucket) -> None:
    do_push(demo)
    old = published(bucket)
    key = f"{OCT}/downloads_by_country/stats.json"
    path = demo / key
    path.write_text(path.read_text().replace("{", '{"note": "re-run",', 1))
    report = do_push(demo)
    assert [u.key for u in report.uploads] == [key] and report.uploads[0].replaces
    assert report.created == 1 and report.published
    new = published(bucket)
    assert new.files[key].url != old.files[key].url
    assert new.files[key].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {k: r for k, r in new.files.items() if k != key} == {
        k: r for k, r in old.files.items() if k != key
    }
    # The superseded object is still served unchanged: no reader of the old manifest breaks.
    assert (
        hashlib.sha256(requests.get(old.files[key].url).content).hexdigest()
        == old.files[key].sha256
    )


def test_a_build_is_never_published_mixed_with_another(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    """Machine Y built one period, X's published build has two: Y's push is refused
    (before any upload) unless --delete; a push that uploads no mart is not."""

    def build(root: Path, periods: list[str], threshold: int) -> None:
        for period in periods:
            path = root / f"marts/quality_by_country/period={period}/data_0.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({"min_sample_count": [threshold]}), path)

    sep, oct_ = "2024-09-01_2024-10-01", "2024-10-01_2024-11-01"
    build(demo, [sep, oct_], 200)
    do_push(demo)
    before = published(bucket).files
    y = tmp_path / "machine-y"
    shutil.copytree(demo / "cache" / OCT.removeprefix("cache/"), y / OCT)
    build(y, [oct_], 500)
    for dry in (["--dry-run"], []):
        proc = iqb("sync", "push", "--allow-synthetic", *dry, "--artifacts", str(y))
        assert proc.returncode == 1, proc.stdout
        assert "this push uploads files of marts/ but the published build has 1 file(s)" in (
            proc.stderr
        )
        assert f"marts/quality_by_country/period={sep}/data_0.parquet" in proc.stderr
    assert published(bucket).files == before
    # a machine that adds a cache entry and no mart publishes as before
    z = tmp_path / "machine-z"
    shutil.copytree(demo / "cache", z / "cache")
    (z / SEP / "uploads_by_country/stats.json").write_text("{}")
    do_push(z)
    assert {k for k in published(bucket).files if k.startswith("marts/")} == {
        k for k in before if k.startswith("marts/")
    }
    # --delete publishes Y's build alone
    proc = iqb("sync", "push", "--allow-synthetic", "--delete", "--artifacts", str(y))
    assert proc.returncode == 0, proc.stderr
    assert [k for k in published(bucket).files if k.startswith("marts/")] == [
        f"marts/quality_by_country/period={oct_}/data_0.parquet"
    ]


def test_delete_removes_superseded_and_dropped_only_when_asked(demo: Path, bucket: Bucket) -> None:
    do_push(demo)
    old = published(bucket)
    changed = f"{OCT}/uploads_by_country/stats.json"
    (demo / changed).write_text((demo / changed).read_text() + " ")
    gone = f"{SEP}/uploads_by_country_asn"
    shutil.rmtree(demo / gone)
    kept = do_push(demo)
    assert kept.remote_only == [f"{gone}/data.parquet", f"{gone}/stats.json"]
    assert f"{gone}/data.parquet" in published(bucket).files  # without --delete: kept
    assert requests.get(old.files[changed].url).status_code == 200
    # objects + 1 new version + the manifest + the kept copies of both published states
    assert len(bucket.objects()) == 48 + 1 + 1 + 2

    time.sleep(0.01)
    # Retention down to the current state only: the old objects are then named by nothing.
    cleaned = do_push(demo, delete=True, keep_days=0, keep_last=1)
    assert len(cleaned.pruned) == 2 and cleaned.state is not None
    manifest = published(bucket)
    assert f"{gone}/data.parquet" not in manifest.files and len(manifest.files) == 46
    assert sorted(o.url for o in cleaned.garbage) == sorted(
        [
            old.files[changed].url,
            old.files[f"{gone}/data.parquet"].url,
            old.files[f"{gone}/stats.json"].url,
        ]
    )
    assert requests.get(old.files[changed].url).status_code == 404
    assert len(bucket.objects()) == 46 + 1 + 1
    with pytest.raises(SyncError, match="refusing --delete"):
        do_push(demo.parent / "empty", delete=True)
    assert len(published(bucket).files) == 46


def test_a_concurrent_push_makes_the_later_publish_fail_not_lose_files(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    do_push(demo)
    (demo / OCT / "uploads_by_country" / "stats.json").write_text("{}")
    rival = tmp_path / "rival"
    shutil.copytree(demo / "cache", rival / "cache")
    (rival / SEP / "uploads_by_country" / "stats.json").write_text('{"rival": 1}')
    happened: list[PushReport] = []

    def meanwhile(_upload: object) -> None:  # another machine publishes during our upload
        if not happened:
            happened.append(do_push(rival))

    with pytest.raises(ConflictError, match="changed since this push read it"):
        do_push(demo, on_upload=meanwhile)
    assert happened[0].published
    manifest = published(bucket)  # the rival's manifest, intact
    assert (
        manifest.files[f"{SEP}/uploads_by_country/stats.json"].sha256
        == hashlib.sha256(b'{"rival": 1}').hexdigest()
    )
    # Re-running our push now merges on top of the rival's manifest.
    do_push(demo)
    manifest = published(bucket)
    assert (
        manifest.files[f"{OCT}/uploads_by_country/stats.json"].sha256
        == hashlib.sha256(b"{}").hexdigest()
    )


def test_an_object_with_other_content_under_our_name_is_never_reused(
    demo: Path, bucket: Bucket
) -> None:
    do_push(demo)
    key = f"{OCT}/downloads_by_country/stats.json"
    (demo / key).write_text('{"new": true}')
    remote = GcsRemote.from_env(FAST)
    url = remote.url_for(key, hashlib.sha256(b'{"new": true}').hexdigest())
    name = url.split(f"/{bucket.name}/", 1)[1]
    bucket.client.bucket(bucket.name).blob(name).upload_from_string(b'{"evil": 1}')
    generation = bucket.manifest_generation()
    with pytest.raises(SyncError, match="exists with other content"):
        do_push(demo)
    assert bucket.manifest_generation() == generation
    published(bucket)


def test_dry_run_lists_and_moves_nothing(demo: Path, bucket: Bucket) -> None:
    proc = iqb("sync", "push", "--allow-synthetic", "--dry-run", "--artifacts", str(demo))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("would upload") == 48
    assert f"would upload  {OCT}/downloads_by_country/data.parquet" in proc.stdout
    assert "nothing was changed" in proc.stdout
    assert bucket.objects() == {}
    assert not (demo / "state" / "manifest.json").exists()

    do_push(demo)
    shutil.rmtree(demo / OCT / "downloads_by_country")
    before = bucket.objects()
    proc = iqb(
        "sync",
        "push",
        "--allow-synthetic",
        "--dry-run",
        "--delete",
        "--keep-days",
        "0",
        "--keep-last",
        "1",
        "--artifacts",
        str(demo),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("would prune   state/manifests/") == 1
    assert f"would drop    {OCT}/downloads_by_country/data.parquet" in proc.stdout
    assert proc.stdout.count("would delete  objects/") == 2
    assert bucket.objects() == before


@pytest.mark.parametrize("via", ["http", "gs"])
def test_corrupted_or_oversized_object_is_detected_and_not_installed(
    via: str, demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    """Both read paths (public URL, storage client) hash and cap what they stream."""
    do_push(demo)
    files = published(bucket).files
    objects = bucket.client.bucket(bucket.name)

    def tamper(key: str, change: Callable[[bytes], bytes]) -> None:
        blob = objects.blob(files[key].url.split(f"/{bucket.name}/", 1)[1])
        blob.upload_from_string(change(blob.download_as_bytes()))

    def flip(good: bytes) -> bytes:
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0xFF  # same size, one flipped byte
        return bytes(bad)

    flipped = f"{OCT}/downloads_by_country/data.parquet"
    longer = f"{OCT}/uploads_by_country/data.parquet"
    tamper(flipped, flip)
    tamper(longer, lambda good: good + bytes(1 << 20))

    other = tmp_path / "elsewhere"
    manifest = [bucket.manifest_gs] if via == "gs" else [bucket.manifest_http, "--allow-http"]
    proc = iqb("cache", "pull", *manifest, "--artifacts", str(other))
    assert proc.returncode == 1
    assert f"{flipped}: sha256" in proc.stderr and "not installed" in proc.stderr
    assert f"{longer}: " in proc.stderr
    assert f"sent more than the {files[longer].size} bytes" in proc.stderr
    # a definite mismatch, not a dropped connection: not "run the same pull again"
    assert "2 file(s) failed, 2 of them because the bucket's bytes are not" in proc.stderr
    assert "run the same pull again" not in proc.stderr
    for key in (flipped, longer):
        entry_dir = other / key.rpartition("/")[0]
        assert [p.name for p in entry_dir.iterdir()] == []  # the entry stays absent as a whole
    assert len(tree(other)) == 44  # every other file was installed


def test_selective_pull(demo: Path, bucket: Bucket, tmp_path: Path) -> None:
    do_push(demo)
    other = tmp_path / "elsewhere"

    def pull_cli(*selection: str) -> dict[str, bytes]:
        proc = iqb(
            "cache",
            "pull",
            bucket.manifest_http,
            "--allow-http",
            "--artifacts",
            str(other),
            *selection,
        )
        assert proc.returncode == 0, proc.stderr
        return tree(other) if (other / "cache").exists() else {}

    # filters combine with AND: uploads_by_country_asn is not a country-granularity dataset
    assert pull_cli("--granularity", "country", "--dataset", "uploads_by_country_asn") == {}
    country_oct = {
        f"{OCT}/{ds}/{f}"
        for ds in ("downloads_by_country", "uploads_by_country")
        for f in ("data.parquet", "stats.json")
    }
    assert (
        set(pull_cli("--granularity", "country", "--start", "2024-10", "--end", "2024-11-01"))
        == country_oct
    )
    got = pull_cli("--dataset", "uploads_by_country_asn", "--end", "2024-10")
    assert set(got) == country_oct | {
        f"{SEP}/uploads_by_country_asn/data.parquet",
        f"{SEP}/uploads_by_country_asn/stats.json",
    }
    assert got == {k: v for k, v in tree(demo).items() if k in got}
    proc = iqb(
        "cache",
        "pull",
        bucket.manifest_http,
        "--allow-http",
        "--artifacts",
        str(other),
        "--dataset",
        "nope",
        "--granularity",
        "galaxy",
        "--start",
        "2024-13",
    )
    assert proc.returncode == 2
    assert "'nope'" in proc.stderr and "'galaxy'" in proc.stderr and "2024-13" in proc.stderr


def _many_files(root: Path, months: int = 12) -> int:
    """Small stand-in files in the cache layout: 24 per month (stats.json: a JSON object)."""
    from datetime import date

    from extract.cache.layout import Entry
    from extract.datasets import DATASETS

    n = 0
    for i in range(months):
        start, end = (
            date(2020 + i // 12, i % 12 + 1, 1),
            date(2020 + (i + 1) // 12, (i + 1) % 12 + 1, 1),
        )
        for ds in DATASETS:
            for name in ("data.parquet", "stats.json"):
                path = root / Entry(ds, start, end).key / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(
                    os.urandom(2048)
                    if name == "data.parquet"
                    else json.dumps({"pad": os.urandom(1020).hex()}).encode()
                )
                n += 1
    return n


def _kill_after(cmd: list[str], log_dir: Path, spans_wanted: int) -> None:
    """Start ``cmd``, SIGKILL it once its log shows ``spans_wanted`` finished files."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            logs = list(log_dir.glob("*.jsonl")) if log_dir.is_dir() else []
            if logs and sum(1 for _ in logs[0].open()) >= spans_wanted:
                break
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_push_killed_midway_keeps_the_old_manifest_valid_and_rerun_completes(
    demo: Path, bucket: Bucket
) -> None:
    do_push(demo)
    before = published(bucket)
    generation = bucket.manifest_generation()
    total = _many_files(demo)
    logs = demo / "state" / "logs"
    for old in logs.glob("*.jsonl"):
        old.unlink()
    _kill_after(
        [IQB, "sync", "push", "--allow-synthetic", "--jobs", "1", "--artifacts", str(demo)], logs, 5
    )
    (killed_log,) = logs.glob("push-*.jsonl")
    finished = {s["key"] for s in spans(killed_log) if s["ok"]}
    assert 5 <= len(finished) < total, "the push was not interrupted midway"
    assert bucket.manifest_generation() == generation
    assert published(bucket).files == before.files  # every URL still serves its bytes

    rerun = do_push(demo)
    assert rerun.published and rerun.created + rerun.reused == total
    assert rerun.reused >= len(finished)  # objects of the killed run are reused, not re-sent
    manifest = published(bucket)
    assert len(manifest.files) == 48 + total


def test_pull_killed_midway_resumes_without_downloading_finished_files(
    bucket: Bucket, artifacts: Path, tmp_path: Path
) -> None:
    total = _many_files(artifacts)
    do_push(artifacts)
    other = tmp_path / "elsewhere"
    logs = other / "state" / "logs"
    _kill_after(
        [
            IQB,
            "cache",
            "pull",
            bucket.manifest_http,
            "--allow-http",
            "--jobs",
            "1",
            "--artifacts",
            str(other),
        ],
        logs,
        6,
    )
    (first,) = logs.glob("pull-*.jsonl")
    first.rename(first.with_suffix(".killed"))
    done = {k for k in tree(other) if not k.rpartition("/")[2].startswith(".")}  # installed
    assert 4 <= len(done) < total, "the pull was not interrupted midway"

    report = do_pull(other, bucket)
    assert not report.failures
    assert not done & set(report.downloaded)
    assert set(report.downloaded) | done == set(tree(artifacts))
    assert tree(other) == tree(artifacts)


def test_bytes_changed_under_the_same_size_and_mtime_are_not_uploaded(
    demo: Path, bucket: Bucket
) -> None:
    data = demo / OCT / "downloads_by_country" / "data.parquet"
    an_hour_ago = time.time() - 3600  # the index trusts no file written just before hashing
    os.utime(data, (an_hour_ago, an_hour_ago))
    assert iqb("cache", "status", "-c", str(DEMO_CONFIG), "--artifacts", str(demo)).returncode == 0
    # the hash index now knows the file by (size, mtime, inode); one byte rots in place
    st = data.stat()
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(SyncError, match="its bytes changed since they were hashed") as info:
        do_push(demo)
    assert str(data) in str(info.value) and "1 upload(s) failed" in str(info.value)
    # nothing was published, so no manifest can name an object with other bytes
    assert requests.get(bucket.manifest_http, timeout=5).status_code == 404


def test_http_is_refused_without_allow_http(demo: Path, bucket: Bucket, tmp_path: Path) -> None:
    do_push(demo)
    manifest = tmp_path / "m.json"
    manifest.write_bytes(requests.get(bucket.manifest_http).content)
    other = tmp_path / "elsewhere"
    proc = iqb("cache", "pull", str(manifest), "--artifacts", str(other))
    assert proc.returncode == 2
    assert "plain http is refused" in proc.stderr and "nothing was downloaded" in proc.stderr
    assert not other.exists() or tree(other) == {}
    proc = iqb("cache", "pull", bucket.manifest_http, "--artifacts", str(other))
    assert proc.returncode == 2 and "plain http is refused" in proc.stderr
    # refused for what it is, before any connection: a host that does not resolve too
    proc = iqb("cache", "pull", "http://iqb.invalid/m.json", "--artifacts", str(other))
    assert proc.returncode == 2 and "plain http is refused" in proc.stderr
    proc = iqb("cache", "pull", str(manifest), "--allow-http", "--artifacts", str(other))
    assert proc.returncode == 0, proc.stderr
    assert tree(other) == tree(demo)


def test_gs_manifest_reads_through_the_storage_client(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    do_push(demo)
    other = tmp_path / "elsewhere"
    proc = iqb("cache", "pull", bucket.manifest_gs, "--artifacts", str(other))
    assert proc.returncode == 0, proc.stderr
    assert tree(other) == tree(demo)


def test_missing_bucket_settings_are_a_clear_error(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GCP_BUCKET", "GCP_PROJECT")}
    proc = subprocess.run(
        [SCRIPT, "--allow-synthetic", "--artifacts", str(demo)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "GCP_PROJECT and GCP_BUCKET not set" in proc.stderr
    assert bucket.objects() == {}
    proc = subprocess.run(
        [SCRIPT, "--allow-synthetic", "--artifacts", str(demo)],
        cwd=tmp_path,
        env={**env, "GCP_PROJECT": "p", "GCP_BUCKET": "nope"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "bucket gs://nope does not exist" in proc.stderr
    # The same settings from a .env file in the working directory: the push goes through.
    (tmp_path / ".env").write_text(f"GCP_PROJECT=iqb-test\nGCP_BUCKET={bucket.name}\n")
    proc = subprocess.run(
        [SCRIPT, "--allow-synthetic", "--artifacts", str(demo)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "uploaded 48 file(s)" in proc.stdout
    published(bucket)


def test_stopped_server_gives_a_clear_error_within_seconds(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_gcs() as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        monkeypatch.setenv("GCP_PROJECT", "iqb-test")
        monkeypatch.setenv("GCP_BUCKET", "gone")
        server.stop()
        t0 = time.monotonic()
        proc = iqb(
            "sync",
            "push",
            "--allow-synthetic",
            "--retry-deadline",
            "2",
            "--timeout",
            "2",
            "--artifacts",
            str(demo),
        )
        assert time.monotonic() - t0 < 15
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1, proc.stderr  # one message
        assert "cannot reach" in proc.stderr and "Connection refused" in proc.stderr
        assert "gs://gone was not reached, nothing was changed" in proc.stderr
        # nor does history wait out the retry deadline (30 s by default)
        t0 = time.monotonic()
        proc = iqb("sync", "history")
        assert time.monotonic() - t0 < 10
        assert proc.returncode == 2 and "gs://gone was not reached" in proc.stderr
        t0 = time.monotonic()  # default retry deadline (30 s): the dead host is seen at once
        proc = iqb(
            "cache",
            "pull",
            f"{server.url}/gone/state/manifest.json",
            "--allow-http",
            "--artifacts",
            str(tmp_path / "other"),
        )
        assert time.monotonic() - t0 < 10
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1, proc.stderr  # one message
        assert (
            f"cannot reach {server.url.removeprefix('http://')}: Connection refused" in proc.stderr
        )


def test_status_against_the_real_mlab_manifest(artifacts: Path) -> None:
    shutil.copytree(REAL_CACHE, artifacts / "cache")
    proc = iqb(
        "cache",
        "status",
        "--manifest",
        str(REAL_MANIFESTS / "mlab-bucket-manifest.json"),
        "--json",
        "--artifacts",
        str(artifacts),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    same = {f["key"] for f in doc["files"] if f["state"] == "same"}
    assert same == {
        f"{OCT}/{ds}/{f}"
        for ds in ("downloads_by_country", "uploads_by_country")
        for f in ("data.parquet", "stats.json")
    }
    assert doc["counts"] == {"same": 4, "only-remote": 4896}
    # one changed byte turns a file "changed"; a file the manifest lacks is "only-local"
    stats = artifacts / OCT / "uploads_by_country" / "stats.json"
    stats.write_text(stats.read_text() + "\n")
    extra = artifacts / "cache/v1/20260601T000000Z/20260701T000000Z/uploads_by_country/stats.json"
    extra.parent.mkdir(parents=True)
    extra.write_text("{}")
    proc = iqb(
        "cache",
        "status",
        "--manifest",
        str(REAL_MANIFESTS / "mlab-bucket-manifest.json"),
        "--json",
        "--granularity",
        "country",
        "--artifacts",
        str(artifacts),
    )
    counts = json.loads(proc.stdout)["counts"]
    assert counts["changed"] == 1 and counts["only-local"] == 1 and counts["same"] == 3


def test_status_table_lists_only_the_files_that_differ(artifacts: Path) -> None:
    shutil.copytree(REAL_CACHE, artifacts / "cache")
    manifest = str(REAL_MANIFESTS / "github-release-manifest-2024-10.json")

    def status(*extra: str) -> str:
        proc = iqb("cache", "status", "--manifest", manifest, "--artifacts", str(artifacts), *extra)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    same = f"{OCT}/downloads_by_country/data.parquet"
    assert status().splitlines() == ["4 same (--all lists the same ones too)"]  # no table
    assert re.search(rf"{same}\s*│ same", status("--all"))
    changed = artifacts / OCT / "uploads_by_country" / "stats.json"
    changed.write_text(changed.read_text() + "\n")
    extra = "cache/v1/20260601T000000Z/20260701T000000Z/uploads_by_country/stats.json"
    (artifacts / extra).parent.mkdir(parents=True)
    (artifacts / extra).write_text("{}")
    out = status()
    assert re.search(rf"{OCT}/uploads_by_country/stats.json\s*│ changed", out)
    assert re.search(rf"{extra}\s*│ only-local", out)
    assert same not in out
    assert out.splitlines()[-1] == "1 changed, 1 only-local, 3 same (--all lists the same ones too)"
    out = status("--all")
    assert re.search(rf"{same}\s*│ same", out)
    assert out.splitlines()[-1] == "1 changed, 1 only-local, 3 same"
    doc = json.loads(status("--json"))  # the JSON always lists every file
    assert len(doc["files"]) == 5 and doc["counts"]["same"] == 3


def test_status_without_manifest_keeps_the_matrix_view(artifacts: Path) -> None:
    shutil.copytree(REAL_CACHE, artifacts / "cache")
    proc = iqb(
        "cache",
        "status",
        "-c",
        str(REPO / "pipeline.demo.yaml"),
        "--json",
        "--artifacts",
        str(artifacts),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"artifacts", "counts", "entries"}
    # the real M-Lab files carry upstream's template hash: current, and unverified until
    # something checks their bytes (no hash in upstream's stats.json)
    assert doc["counts"] == {"unverified": 2, "missing": 22}
    oct_down = next(
        e
        for e in doc["entries"]
        if e["key"].endswith("20241001T000000Z/20241101T000000Z/downloads_by_country")
    )
    assert oct_down["state"] == "unverified" and oct_down["source"] == "upstream"


def test_verify_and_usage(demo: Path, bucket: Bucket) -> None:
    do_push(demo)
    proc = iqb("cache", "verify", bucket.manifest_http, "--allow-http", "--artifacts", str(demo))
    assert proc.returncode == 0, proc.stderr
    assert "48 ok, 0 mismatched" in proc.stdout
    proc = iqb("cache", "verify", "--artifacts", str(demo))  # each entry against its stats.json
    assert proc.returncode == 0, proc.stderr
    assert "24 entries: 24 present, 0 newly verified, 0 unverified, 0 corrupt" in proc.stdout
    path = demo / OCT / "downloads_by_country_asn" / "data.parquet"
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # size and mtime unchanged
    proc = iqb("cache", "verify", bucket.manifest_http, "--allow-http", "--artifacts", str(demo))
    assert proc.returncode == 1
    assert f"mismatch {OCT}/downloads_by_country_asn/data.parquet" in proc.stderr

    stats = demo / OCT / "uploads_by_country" / "stats.json"
    doc = json.loads(stats.read_text())
    doc["total_bytes_billed"] = 7 * 10**9
    stats.write_text(json.dumps(doc))
    proc = iqb("cache", "usage", "--json", "--artifacts", str(demo))
    assert proc.returncode == 0, proc.stderr
    periods = json.loads(proc.stdout)["periods"]
    assert [(p["start"], p["entries"], p["files"]) for p in periods] == [
        ("2024-09-01", 12, 24),
        ("2024-10-01", 12, 24),
    ]
    assert periods[1]["bytes_billed"] == 7 * 10**9 and periods[0]["bytes_billed"] == 0
    assert periods[0]["bytes"] == sum(len(b) for k, b in tree(demo).items() if k.startswith(SEP))


def test_duckdb_snapshot_is_consistent_and_pushed_once(demo: Path, bucket: Bucket) -> None:
    import duckdb

    db = demo / "iqb.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
    report = do_push(demo)
    assert report.snapshot and report.snapshot.startswith("read_only/iqb_")
    snapshot = demo / report.snapshot
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (1000,)
        assert con.execute("SELECT count(*) FROM information_schema.tables").fetchone() == (1,)
    assert report.snapshot in published(bucket).files
    assert "iqb.duckdb" not in published(bucket).files  # the live file is never published

    again = do_push(demo)
    assert again.snapshot is None and not again.uploads

    holder = subprocess.Popen(
        [
            str(Path(IQB).with_name("python")),
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "c.execute('INSERT INTO t VALUES (1)'); print('ready', flush=True); time.sleep(60)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "ready"
        proc = iqb("sync", "push", "--allow-synthetic", "--artifacts", str(demo))
        assert proc.returncode == 1
        assert "is open for writing by another process" in proc.stderr
    finally:
        holder.kill()
        holder.wait()


def test_snapshot_folds_in_the_log_of_a_writer_that_died(demo: Path, bucket: Bucket) -> None:
    import duckdb

    db = demo / "iqb.duckdb"
    subprocess.run(
        [
            str(Path(IQB).with_name("python")),
            "-c",
            "import duckdb, os, sys; c = duckdb.connect(sys.argv[1]); "
            "c.execute('CREATE TABLE t AS SELECT 42 AS x'); os._exit(0)",
            str(db),
        ],
        check=True,
    )
    assert db.with_name("iqb.duckdb.wal").exists()  # died before its checkpoint
    report = do_push(demo)
    assert report.snapshot
    with duckdb.connect(str(demo / report.snapshot), read_only=True) as con:
        assert con.execute("SELECT x FROM t").fetchall() == [(42,)]


def test_extract_run_pulls_from_the_bucket_instead_of_running_the_engine(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    do_push(demo)
    config = str(REPO / "pipeline.demo.yaml")
    other = tmp_path / "no-raw-data"  # no sample: the engine could not run a single entry
    proc = iqb(
        "extract",
        "run",
        "-c",
        config,
        "--artifacts",
        str(other),
        "--allow-http",
        env={"IQB_REMOTE_MANIFEST": bucket.manifest_http},
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"pulled\s*│\s*24\s*│", proc.stdout), proc.stdout
    assert "done" not in proc.stdout and "failed" not in proc.stdout
    assert tree(other) == tree(demo)
    (log,) = (other / "state" / "logs").glob("pull-*.jsonl")
    assert len(spans(log)) == 48

    # Everything local: the remote is never read, so a dead one does not matter.
    proc = iqb(
        "extract",
        "run",
        "-c",
        config,
        "--artifacts",
        str(other),
        "--allow-http",
        "--remote",
        "http://127.0.0.1:9/none/state/manifest.json",
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"skipped\s*│\s*24\s*│", proc.stdout), proc.stdout
    # Something missing and the remote unusable: one clear reason, no silent engine run.
    proc = iqb(
        "extract",
        "run",
        "-c",
        config,
        "--artifacts",
        str(tmp_path / "x"),
        "--remote",
        str(tmp_path / "no-such-manifest.json"),
    )
    assert proc.returncode == 1
    assert "remote manifest unusable" in proc.stderr
    assert "no-such-manifest.json: cannot read the manifest" in proc.stderr
    assert not (tmp_path / "x" / "cache").exists() or tree(tmp_path / "x") == {}

    for flag in ("--no-remote", "--force"):
        fresh = tmp_path / f"fresh{flag}"
        proc = iqb(
            "extract",
            "run",
            "-c",
            config,
            "--artifacts",
            str(fresh),
            "--allow-http",
            flag,
            env={"IQB_REMOTE_MANIFEST": bucket.manifest_http},
        )
        assert proc.returncode == 1, flag  # went to the engine, which has no raw data here
        assert not (fresh / "cache").exists() or tree(fresh) == {}


def test_extract_run_pulls_upstream_entries_but_not_another_template(
    bucket: Bucket, artifacts: Path, tmp_path: Path
) -> None:
    """M-Lab's real entries carry upstream's template hash: current, so pulled, and
    verified on arrival; an entry of an unknown template is not taken."""
    shutil.copytree(REAL_CACHE, artifacts / "cache")
    foreign = artifacts / OCT / "uploads_by_country" / "stats.json"
    doc = json.loads(foreign.read_text())
    doc["template_hash"] = "0" * 64
    foreign.write_text(json.dumps(doc))
    do_push(artifacts)
    other = tmp_path / "other"
    config = tmp_path / "oct.yaml"
    config.write_text(
        'version: 0\nmatrix:\n  dates:\n    - {months: "2024-10..2024-10"}\n'
        "  granularities: [country]\n"
    )
    # the dry run asks the remote first: the held entry is priced at 0 bytes, no query
    proc = iqb(
        "extract",
        "run",
        "-c",
        str(config),
        "--artifacts",
        str(other),
        "--dry-run",
        "--remote",
        bucket.manifest_http,
        "--allow-http",
    )
    assert re.search(r"would pull\s*│\s*1\s*│", proc.stdout), proc.stdout
    assert "would run  uploads_by_country 2024-10-01..2024-11-01" in proc.stdout
    assert not (other / "cache").exists()

    proc = iqb(
        "extract",
        "run",
        "-c",
        str(config),
        "--artifacts",
        str(other),
        "--remote",
        bucket.manifest_http,
        "--allow-http",
    )
    assert re.search(r"pulled\s*│\s*1\s*│", proc.stdout), proc.stdout
    assert (other / OCT / "downloads_by_country" / "data.parquet").read_bytes() == (
        REAL_CACHE / "v1/20241001T000000Z/20241101T000000Z/downloads_by_country/data.parquet"
    ).read_bytes()
    assert not (other / OCT / "uploads_by_country" / "data.parquet").exists()
    proc = iqb("cache", "status", "-c", str(config), "--json", "--artifacts", str(other))
    states = {e["key"].rsplit("/", 1)[1]: e["state"] for e in json.loads(proc.stdout)["entries"]}
    # verified against the manifest on the way in: present, not merely unverified
    assert states == {"downloads_by_country": "present", "uploads_by_country": "missing"}


def test_push_refuses_a_publish_that_a_dbt_build_left_half_done(demo: Path, bucket: Bucket) -> None:
    committed = demo / "state" / "publish" / "some-invocation"
    committed.mkdir(parents=True)
    (committed / "COMMIT").write_text("some-invocation\n")
    proc = iqb("sync", "push", "--artifacts", str(demo))
    assert proc.returncode != 0
    assert "stopped while publishing" in proc.stderr and "dbt build" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert requests.get(bucket.manifest_http, timeout=5).status_code == 404  # nothing published
