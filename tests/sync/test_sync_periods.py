"""A period that is not a calendar month that has begun is neither pulled nor pushed.

Pulled or pushed, a future month would be built and shown as the latest period
(extract/months.py holds the one rule; cache keys are read through it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from extract.sync.push import push
from extract.sync.remote import GcsRemote
from tests.sync.helpers import FAST, Bucket, iqb

OCT = "cache/v1/20241001T000000Z/20241101T000000Z"
FUTURE = "cache/v1/20540101T000000Z/20540201T000000Z"


def test_pull_refuses_a_manifest_key_of_a_future_month(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    push(demo, GcsRemote.from_env(FAST), jobs=4, allow_synthetic=True)
    blob = bucket.client.bucket(bucket.name).blob("state/manifest.json")
    doc = json.loads(blob.download_as_bytes())
    for name in ("data.parquet", "stats.json"):
        doc["files"][f"{FUTURE}/downloads_by_country/{name}"] = doc["files"][
            f"{OCT}/downloads_by_country/{name}"
        ]
    blob.upload_from_string(json.dumps(doc))
    other = tmp_path / "reader"
    proc = iqb("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(other))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{FUTURE}/downloads_by_country/data.parquet" in proc.stderr
    assert "2054-01 starts after the current month" in proc.stderr
    assert not (other / "cache").exists()


def test_push_does_not_publish_a_future_month(demo: Path, bucket: Bucket) -> None:
    shutil.copytree(demo / OCT, demo / FUTURE)
    push(demo, GcsRemote.from_env(FAST), jobs=4, allow_synthetic=True)
    objects = bucket.objects()
    manifest = json.loads(objects["state/manifest.json"])
    assert any(k.startswith(OCT) for k in manifest["files"])
    assert not [k for k in manifest["files"] if "2054" in k]
    assert not [k for k in objects if "2054" in k]
