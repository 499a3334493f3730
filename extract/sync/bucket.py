"""Create the bucket the artifacts are backed up to, with the settings a backup needs.

Why each setting:
- **uniform bucket-level access**: one IAM policy decides who reads; no per-object
  ACL can quietly make one file public or private.
- **soft delete of at least 14 days** (the common data-usage pipeline asks for
  two weeks): an object deleted by ``push --delete`` or by hand can be
  restored for that long, on top of the kept manifests. A backup you cannot
  restore is not a backup.
- **location**: where the data lives (and what egress costs).
- **public read** (optional, as M-Lab's bucket has): ``allUsers`` may read the
  objects, so anyone can ``iqb cache pull`` the https manifest URL. Without it,
  public access prevention is enforced.

An existing bucket is never changed: its settings are read and reported, with
a warning when soft delete is shorter than 14 days, because changing a shared
bucket behind its owner's back is worse than a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from google.api_core import exceptions as gexc
from google.cloud import storage

from extract import defaults
from extract.sync.remote import SyncError, Transfer, describe

MIN_SOFT_DELETE_DAYS = 14
MAX_SOFT_DELETE_DAYS = 90  # the longest soft-delete retention GCS accepts
DEFAULT_LOCATION = "US"
PUBLIC_MEMBER = "allUsers"
PUBLIC_ROLE = "roles/storage.objectViewer"
DAY = 86400
# GCS bucket names: 3-63 characters (dotted names up to 222), lowercase letters,
# digits, -, _ and .; start and end with a letter or digit.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_LOCATION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,40}$")


def _one_line(exc: BaseException) -> str:
    return describe(exc).strip().splitlines()[0]


def bucket_problem(name: str) -> str | None:
    """Why ``name`` cannot be a bucket name, or None: said before any request is sent."""
    longest = 222 if "." in name else 63
    if (
        not _BUCKET_RE.match(name)
        or not 3 <= len(name) <= longest
        or any(len(part) > 63 for part in name.split("."))
    ):
        return (
            f"{name!r} is not a valid bucket name (3-63 characters, up to 222 with dots: "
            "lowercase letters, digits, '-', '_', '.'; starting and ending with a letter or "
            "digit)"
        )
    if name.startswith("goog") or ".." in name:
        return f"{name!r} is not a valid bucket name (no 'goog' prefix, no '..')"
    return None


@dataclass(frozen=True)
class BucketPlan:
    """What ``create-bucket`` asks for."""

    name: str
    location: str = DEFAULT_LOCATION
    soft_delete_days: int = defaults.SOFT_DELETE_DAYS
    public_read: bool = False

    def problems(self) -> list[str]:
        found = []
        if problem := bucket_problem(self.name):
            found.append(problem)
        if not _LOCATION_RE.match(self.location):
            found.append(f"{self.location!r} is not a location (e.g. US, EU, us-central1)")
        if not MIN_SOFT_DELETE_DAYS <= self.soft_delete_days <= MAX_SOFT_DELETE_DAYS:
            found.append(
                f"--soft-delete-days {self.soft_delete_days}: must be "
                f"{MIN_SOFT_DELETE_DAYS} to {MAX_SOFT_DELETE_DAYS} (a backup needs two "
                "weeks to notice and undo a bad publish; GCS allows at most 90)"
            )
        return found

    def bucket(self, client: storage.Client) -> storage.Bucket:
        """The bucket resource sent in the create request, every setting on it."""
        bucket = client.bucket(self.name)
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        bucket.iam_configuration.public_access_prevention = (
            "inherited" if self.public_read else "enforced"
        )
        bucket.soft_delete_policy.retention_duration_seconds = self.soft_delete_days * DAY
        return bucket


@dataclass
class BucketSettings:
    """What a bucket reports about itself (None: the server did not say)."""

    name: str
    location: str | None
    uniform_access: bool | None
    soft_delete_days: float | None  # 0: soft delete is off
    public_access_prevention: str | None
    public_read: bool | None  # None: the IAM policy could not be read
    versioning: bool | None
    iam_error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        def show(value: object, unknown: str = "not reported") -> str:
            if value is None:
                return unknown
            if isinstance(value, bool):
                return "yes" if value else "no"
            return str(value)

        days = self.soft_delete_days
        return [
            ("bucket", f"gs://{self.name}"),
            ("location", show(self.location)),
            ("uniform bucket-level access", show(self.uniform_access)),
            ("soft delete", "off" if not days else f"{days:g} days"),
            ("public access prevention", show(self.public_access_prevention)),
            ("public read (allUsers)", show(self.public_read, f"unknown ({self.iam_error})")),
            ("object versioning", show(self.versioning)),
        ]


def read_settings(bucket: storage.Bucket, transfer: Transfer) -> BucketSettings:
    """The settings of an existing (reloaded) bucket, with the warnings they deserve."""
    iam = bucket.iam_configuration
    seconds = bucket.soft_delete_policy.retention_duration_seconds
    public: bool | None = None
    iam_error = None
    try:
        policy = bucket.get_iam_policy(requested_policy_version=3, timeout=transfer.timeout)
        public = any(
            b.get("role") == PUBLIC_ROLE and PUBLIC_MEMBER in b.get("members", ())
            for b in policy.bindings
        )
    except Exception as exc:  # no permission, or a server without IAM: report, do not fail
        iam_error = f"cannot read the IAM policy: {_one_line(exc)}"
    settings = BucketSettings(
        name=bucket.name,
        location=bucket.location,
        uniform_access=bool(iam.uniform_bucket_level_access_enabled)
        if "iamConfiguration" in bucket._properties
        else None,
        soft_delete_days=(int(seconds) / DAY) if seconds else 0,
        public_access_prevention=iam.public_access_prevention
        if "iamConfiguration" in bucket._properties
        else None,
        public_read=public,
        versioning=bucket.versioning_enabled,
        iam_error=iam_error,
    )
    if (settings.soft_delete_days or 0) < MIN_SOFT_DELETE_DAYS:
        have = "off" if not settings.soft_delete_days else f"{settings.soft_delete_days:g} days"
        settings.warnings.append(
            f"soft delete is {have}, shorter than {MIN_SOFT_DELETE_DAYS} days: a deleted object "
            f"cannot be restored for long. To fix: gcloud storage buckets update gs://{bucket.name}"
            f" --soft-delete-duration={MIN_SOFT_DELETE_DAYS}d"
        )
    if settings.uniform_access is False:
        settings.warnings.append(
            f"uniform bucket-level access is off: per-object ACLs can "
            f"override the bucket's policy (gcloud storage buckets update "
            f"gs://{bucket.name} --uniform-bucket-level-access)"
        )
    return settings


@dataclass
class CreateResult:
    created: bool
    settings: BucketSettings
    public_read_error: str | None = None


def create_bucket(
    client: storage.Client, project: str, plan: BucketPlan, transfer: Transfer
) -> CreateResult:
    """Create the bucket as planned, or report an existing one unchanged."""
    problems = plan.problems()
    if problems:
        raise SyncError("; ".join(problems))
    what = f"gs://{plan.name}"
    try:
        existing = client.lookup_bucket(plan.name, timeout=transfer.timeout)
    except gexc.Forbidden:
        raise SyncError(
            f"{what} exists but these credentials may not read it (a bucket name is "
            "global: someone else's bucket?); pick another GCP_BUCKET"
        ) from None
    except Exception as exc:
        raise SyncError(f"looking up {what}: {describe(exc)}") from None
    if existing is not None:
        return CreateResult(False, read_settings(existing, transfer))
    try:
        bucket = client.create_bucket(
            plan.bucket(client), project=project, location=plan.location, timeout=transfer.timeout
        )
    except gexc.Conflict:
        raise SyncError(
            f"{what} exists already but not in a project these credentials see "
            "(bucket names are global); pick another GCP_BUCKET"
        ) from None
    except Exception as exc:
        raise SyncError(f"creating {what}: {describe(exc)}") from None
    result = CreateResult(True, read_settings(bucket, transfer))
    if plan.public_read and not result.settings.public_read:
        try:
            policy = bucket.get_iam_policy(requested_policy_version=3, timeout=transfer.timeout)
            policy.bindings.append({"role": PUBLIC_ROLE, "members": {PUBLIC_MEMBER}})
            bucket.set_iam_policy(policy, timeout=transfer.timeout)
            result.settings.public_read = True
            result.settings.iam_error = None
        except Exception as exc:
            result.public_read_error = (
                f"{what} was created, but granting public read failed: {_one_line(exc)}. Grant "
                f"it with: gcloud storage buckets add-iam-policy-binding {what} "
                f"--member={PUBLIC_MEMBER} --role={PUBLIC_ROLE}"
            )
    return result
