"""``./create_gcp_bucket.sh`` / ``iqb sync create-bucket`` against fake-gcs-server.

fake-gcs-server creates buckets and keeps versioning, but ignores location
(always US-CENTRAL1), uniform bucket-level access, soft delete and public
access prevention, and has no IAM endpoint (docs/sync.md). So the tests check
what it does honour (the bucket exists, an existing one is left untouched,
the warnings and errors), and check the settings in the create request the
real client builds, not in the server's echo.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from extract.sync.bucket import BucketPlan, read_settings
from tests.conftest import REPO
from tests.servers import Running
from tests.sync.helpers import FAST

SCRIPT = str(REPO / "create_gcp_bucket.sh")


@pytest.fixture
def env(gcs_server: Running) -> dict[str, str]:
    """The environment of a shell: the emulator, a project, no bucket chosen yet."""
    base = {k: v for k, v in os.environ.items() if k not in ("GCP_BUCKET", "GCP_PROJECT")}
    return {**base, "STORAGE_EMULATOR_HOST": gcs_server.url, "COLUMNS": "250"}


@pytest.fixture
def client(gcs_server: Running, monkeypatch: pytest.MonkeyPatch) -> storage.Client:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    return storage.Client(project="iqb-test", credentials=AnonymousCredentials())


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def new_name() -> str:
    return f"iqb-backup-{uuid.uuid4().hex[:10]}"


def test_creates_the_bucket_from_dotenv_then_leaves_it_alone(
    env: dict[str, str], client: storage.Client, tmp_path: Path
) -> None:
    name = new_name()
    (tmp_path / ".env").write_text(f"GCP_PROJECT=iqb-test\nGCP_BUCKET={name}\n")
    proc = run(["--location", "EU"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"created gs://{name} in EU" in proc.stdout
    assert "soft delete 14 days" in proc.stdout
    bucket = client.lookup_bucket(name)
    assert bucket is not None
    before = (bucket.metageneration, bucket.updated)

    again = run([], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"gs://{name} exists already: nothing was changed" in again.stdout
    assert "soft delete:" in again.stdout and "uniform bucket-level access:" in again.stdout
    # fake-gcs-server reports no soft delete: exactly the bucket the warning is for.
    assert "warning: soft delete is off, shorter than 14 days" in again.stderr
    assert "--soft-delete-duration=14d" in again.stderr
    bucket.reload()
    assert (bucket.metageneration, bucket.updated) == before


def test_environment_wins_over_dotenv(
    env: dict[str, str], client: storage.Client, tmp_path: Path
) -> None:
    exported, in_file = new_name(), new_name()
    (tmp_path / ".env").write_text(f"GCP_PROJECT=iqb-test\nGCP_BUCKET={in_file}\n")
    proc = run([], {**env, "GCP_BUCKET": exported}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert client.lookup_bucket(exported) is not None
    assert client.lookup_bucket(in_file) is None


def test_the_create_request_asks_for_every_setting(client: storage.Client) -> None:
    body = BucketPlan("b-name", "EU", 21, public_read=False).bucket(client)._properties
    assert body["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] is True
    assert body["iamConfiguration"]["publicAccessPrevention"] == "enforced"
    assert int(body["softDeletePolicy"]["retentionDurationSeconds"]) == 21 * 86400
    public = BucketPlan("b-name", public_read=True).bucket(client)._properties
    assert public["iamConfiguration"]["publicAccessPrevention"] == "inherited"
    assert int(public["softDeletePolicy"]["retentionDurationSeconds"]) == 14 * 86400


@pytest.mark.parametrize(
    ("seconds", "warned"), [(7 * 86400, "7 days"), (0, "off"), (30 * 86400, None)]
)
def test_settings_of_an_existing_bucket_warn_below_14_days(
    client: storage.Client, seconds: int, warned: str | None
) -> None:
    """A bucket as the real service describes one (fake-gcs-server never reports these)."""
    bucket = storage.Bucket(client, "somebody-elses")
    bucket._set_properties(  # what the client does with the JSON a bucket GET returns
        {
            "name": "somebody-elses",
            "location": "US",
            "iamConfiguration": {
                "uniformBucketLevelAccess": {"enabled": True},
                "publicAccessPrevention": "inherited",
            },
            "softDeletePolicy": {"retentionDurationSeconds": str(seconds)},
        }
    )
    settings = read_settings(bucket, FAST)
    rows = dict(settings.rows())
    assert rows["uniform bucket-level access"] == "yes" and rows["location"] == "US"
    soft = [w for w in settings.warnings if "soft delete" in w]
    if warned is None:
        assert soft == [] and rows["soft delete"] == "30 days"
    else:
        assert len(soft) == 1 and f"soft delete is {warned}, shorter than 14 days" in soft[0]
    # The emulator has no IAM endpoint: public read is reported as unknown, not guessed.
    assert (
        settings.public_read is None
        and "cannot read the IAM policy" in rows["public read (allUsers)"]
    )


@pytest.mark.parametrize(
    ("args", "bucket", "message"),
    [
        (["--soft-delete-days", "7"], None, "--soft-delete-days 7: must be 14 to 90"),
        (["--soft-delete-days", "91"], None, "--soft-delete-days 91: must be 14 to 90"),
        (["--location", "e u"], None, "'e u' is not a location"),
        ([], "Bad_Name!", "'Bad_Name!' is not a valid bucket name"),
        ([], "googbucket", "no 'goog' prefix"),
    ],
)
def test_bad_input_is_one_readable_error_and_creates_nothing(
    env: dict[str, str],
    client: storage.Client,
    tmp_path: Path,
    args: list[str],
    bucket: str | None,
    message: str,
) -> None:
    name = bucket or new_name()
    proc = run(args, {**env, "GCP_PROJECT": "iqb-test", "GCP_BUCKET": name}, tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1
    if bucket is None:
        assert client.lookup_bucket(name) is None


def test_missing_settings_name_what_is_missing(env: dict[str, str], tmp_path: Path) -> None:
    proc = run([], env, tmp_path)
    assert proc.returncode == 2
    assert "GCP_PROJECT and GCP_BUCKET not set" in proc.stderr and "Traceback" not in proc.stderr


def test_public_read_that_cannot_be_granted_is_an_error_with_the_fix(
    env: dict[str, str], client: storage.Client, tmp_path: Path
) -> None:
    name = new_name()
    proc = run(["--public-read"], {**env, "GCP_PROJECT": "iqb-test", "GCP_BUCKET": name}, tmp_path)
    assert proc.returncode == 1
    assert f"gs://{name} was created, but granting public read failed" in proc.stderr
    assert (
        f"gcloud storage buckets add-iam-policy-binding gs://{name} --member=allUsers "
        "--role=roles/storage.objectViewer"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert client.lookup_bucket(name) is not None
