"""Where artifacts go: the bucket (push), and the transfer policy every request obeys.

Two small Protocols keep the rest of ``extract.sync`` independent of Google:
``Remote`` (here) is what a push needs from a bucket, ``Source``
(``source.py``) what a pull needs to read a URL. ``GcsRemote`` implements the
first with google-cloud-storage; another store (S3, a directory) would
implement the same five methods. ``Transfer`` (timeouts, the retry policy)
and ``SyncError`` serve both sides.

Objects are content-addressed: the file under key ``cache/v1/.../data.parquet``
with hash H is stored as ``objects/cache/v1/.../H/data.parquet``. A changed
file therefore never overwrites an object a published manifest names, every
upload is guarded with ``if_generation_match=0`` (create only), and an upload
that finds its object already there (a re-run after a kill, two keys with the
same bytes) reuses it after checking size and CRC32C.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import quote, unquote

import google_crc32c
import requests
from google.api_core import exceptions as gexc
from google.api_core.exceptions import RetryError
from google.api_core.retry import Retry
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import storage

from extract import defaults
from extract.paths import MANIFEST
from extract.retry import is_transient_transfer

ENV_BUCKET = "GCP_BUCKET"
ENV_PROJECT = "GCP_PROJECT"
ENV_EMULATOR = "STORAGE_EMULATOR_HOST"
GCS_PUBLIC_BASE = "https://storage.googleapis.com"
OBJECTS_PREFIX = "objects/"
CHUNK = 1 << 20
# Content-addressed objects never change; the manifest must never be served stale.
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache, max-age=0"
_CONTENT_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".duckdb": "application/octet-stream",
    # the HTML report (iqb report --html) opens in a browser from the bucket
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
T = TypeVar("T")


class SyncError(Exception):
    """A failure the user can act on; ``str()`` is the whole message."""


def bullets(items: list[str], limit: int = 10) -> str:
    """The first ``limit`` items of a SyncError's list, one per line, and how many more."""
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return "\n".join(f"  - {k}" for k in items[:limit]) + more


class ConflictError(SyncError):
    """The bucket's manifest changed between reading it and publishing a new one."""


def describe(exc: BaseException) -> str:
    """A one-line reason: the errno text of a refused connection, not a page of repr."""
    if isinstance(exc, RetryError) and exc.cause is not None:
        return describe(exc.cause)
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if isinstance(exc, (requests.ConnectionError, ConnectionError)) and errno:
        return f"connection failed: {errno.group(0)}"
    if isinstance(exc, gexc.GoogleAPICallError):
        return f"HTTP {exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@dataclass(frozen=True)
class Transfer:
    """Timeouts and the retry budget that every request of a push or pull obeys."""

    connect_timeout: float = defaults.CONNECT_TIMEOUT_S
    read_timeout: float = defaults.READ_TIMEOUT_S
    retry_deadline: float = defaults.RETRY_DEADLINE_S

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def retry(self) -> Retry:
        """Exponential backoff (0.5 s doubling to 8 s) on transient errors, within the deadline."""
        return Retry(
            predicate=is_transient_transfer,
            initial=0.5,
            maximum=8.0,
            multiplier=2.0,
            timeout=self.retry_deadline,
        )

    def call(self, what: str, fn: Callable[[], T], retry: bool = True) -> T:
        """Run ``fn`` (under the retry policy unless it retries itself, as GCS calls do).

        Any failure becomes one SyncError naming ``what``.
        """
        try:
            return self.retry()(fn)() if retry else fn()
        except SyncError:
            raise
        except RetryError as exc:
            raise SyncError(
                f"{what}: gave up after retrying for {self.retry_deadline:g} s: {describe(exc)}"
            ) from None
        except Exception as exc:
            raise SyncError(f"{what}: {describe(exc)}") from None


def object_name(key: str, sha256: str) -> str:
    """Content-addressed object name: the key's folder, then the hash, then the file name."""
    folder, _, base = key.rpartition("/")
    return f"{OBJECTS_PREFIX}{folder + '/' if folder else ''}{sha256}/{base}"


def public_base() -> str:
    """Base of the objects' public URLs: the emulator's endpoint when one is configured."""
    return (os.environ.get(ENV_EMULATOR) or GCS_PUBLIC_BASE).rstrip("/")


def public_url(bucket: str, name: str) -> str:
    return f"{public_base()}/{bucket}/{quote(name)}"


def gcs_location(url: str) -> tuple[str, str] | None:
    """(bucket, object) for ``gs://`` URLs and public URLs of the configured endpoint."""
    if url.startswith("gs://"):
        bucket, _, name = url[5:].partition("/")
        return (bucket, name) if bucket and name else None
    base = public_base() + "/"
    if url.startswith(base):
        bucket, _, name = url[len(base) :].partition("/")
        return (bucket, unquote(name)) if bucket and name else None
    return None


def crc32c_b64(path: Path) -> str:
    """CRC32C of a file as GCS reports it (base64 of the big-endian value)."""
    checksum = google_crc32c.Checksum()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode()


def storage_client(project: str | None) -> storage.Client:
    """A client for the configured endpoint; anonymous when no credentials exist.

    Against the emulator google-cloud-storage never looks credentials up. For
    the real service a missing login still allows reading public buckets.
    """
    try:
        return storage.Client(project=project)
    except DefaultCredentialsError:
        return storage.Client.create_anonymous_client()


@dataclass(frozen=True)
class StoredObject:
    name: str
    url: str
    generation: int
    created: datetime
    size: int
    sha256: str | None = None  # as the push that uploaded it recorded it (object metadata)


class Remote(Protocol):
    """What a push needs from a bucket."""

    label: str

    def read_manifest(self) -> tuple[bytes | None, int]:
        """The published manifest and its generation (None, 0 if there is none yet)."""
        ...

    def url_for(self, key: str, sha256: str) -> str:
        """The public URL the file with this key and hash is (or will be) stored at."""
        ...

    def url_for_manifest(self) -> str: ...

    def upload(self, path: Path, key: str, sha256: str) -> bool:
        """Store the file at ``url_for(key, sha256)``; return whether a new object was made."""
        ...

    def publish(self, data: bytes, generation: int) -> int:
        """Replace the manifest only if it is still at ``generation``; return the new one."""
        ...

    def objects(self) -> list[StoredObject]:
        """Every data object (not the manifest) in the store."""
        ...

    def delete(self, obj: StoredObject) -> None: ...


class GcsRemote:
    """A Google Cloud Storage bucket (or fake-gcs-server when STORAGE_EMULATOR_HOST is set)."""

    def __init__(
        self,
        bucket: str,
        project: str | None,
        transfer: Transfer,
        client: storage.Client | None = None,
    ) -> None:
        self.bucket_name = bucket
        self.label = f"gs://{bucket}"
        self.transfer = transfer
        self.client = client or storage_client(project)
        self.bucket = self.client.bucket(bucket)

    @classmethod
    def from_env(cls, transfer: Transfer) -> GcsRemote:
        """GCP_BUCKET and GCP_PROJECT from the environment, or one error naming what is missing."""
        missing = [v for v in (ENV_PROJECT, ENV_BUCKET) if not os.environ.get(v)]
        if missing:
            raise SyncError(
                f"{' and '.join(missing)} not set: export {missing[0]}=... or put "
                f"it in .env (see README, 'Distribute: the bucket')"
            )
        bucket = os.environ[ENV_BUCKET].removeprefix("gs://").strip("/")
        return cls(bucket, os.environ[ENV_PROJECT], transfer)

    def url_for(self, key: str, sha256: str) -> str:
        return public_url(self.bucket_name, object_name(key, sha256))

    def url_for_manifest(self) -> str:
        return public_url(self.bucket_name, MANIFEST)

    def _kwargs(self) -> dict:
        return {"timeout": self.transfer.timeout, "retry": self.transfer.retry()}

    def read_manifest(self) -> tuple[bytes | None, int]:
        blob = self.bucket.blob(MANIFEST)

        def read() -> tuple[bytes | None, int]:
            try:
                return blob.download_as_bytes(**self._kwargs()), int(blob.generation or 0)
            except gexc.NotFound:
                if not self.bucket.exists(**self._kwargs()):
                    raise SyncError(
                        f"bucket {self.label} does not exist (or is not "
                        "visible with these credentials)"
                    ) from None
                return None, 0

        return self.transfer.call(f"reading {self.label}/{MANIFEST}", read, retry=False)

    def upload(self, path: Path, key: str, sha256: str) -> bool:
        name = object_name(key, sha256)
        blob = self.bucket.blob(name)
        blob.metadata = {"sha256": sha256, "key": key}
        blob.cache_control = IMMUTABLE
        blob.content_type = _CONTENT_TYPES.get(path.suffix, "application/octet-stream")

        def put() -> bool:
            try:
                # crc32c is sent with the upload and checked by the server (multipart) or
                # compared with the server's value, the object deleted on mismatch (resumable).
                blob.upload_from_filename(
                    str(path), if_generation_match=0, checksum="crc32c", **self._kwargs()
                )
                return True
            except gexc.PreconditionFailed:
                existing = self.bucket.get_blob(name, **self._kwargs())
                if existing is None:  # deleted since: try again
                    return put()
                if existing.size == path.stat().st_size and existing.crc32c == crc32c_b64(path):
                    return False
                raise SyncError(
                    f"{self.label}/{name} exists with other content than {key}; "
                    "refusing to reuse it (delete that object by hand)"
                ) from None

        return self.transfer.call(f"uploading {key} to {self.label}", put, retry=False)

    def publish(self, data: bytes, generation: int) -> int:
        blob = self.bucket.blob(MANIFEST)
        blob.cache_control = NO_CACHE

        def put() -> int:
            try:
                blob.upload_from_string(
                    data,
                    content_type="application/json",
                    if_generation_match=generation,
                    checksum="crc32c",
                    **self._kwargs(),
                )
            except gexc.PreconditionFailed:
                raise ConflictError(
                    f"{self.label}/{MANIFEST} changed since this push read "
                    "it (another push?); nothing was published: run the push "
                    "again"
                ) from None
            return int(blob.generation or 0)

        return self.transfer.call(f"publishing {self.label}/{MANIFEST}", put, retry=False)

    def objects(self) -> list[StoredObject]:
        def listing() -> list[StoredObject]:
            return [
                StoredObject(
                    b.name,
                    public_url(self.bucket_name, b.name),
                    int(b.generation),
                    b.time_created,
                    int(b.size or 0),
                    (b.metadata or {}).get("sha256"),
                )
                for b in self.client.list_blobs(
                    self.bucket_name, prefix=OBJECTS_PREFIX, **self._kwargs()
                )
            ]

        return self.transfer.call(f"listing {self.label}/{OBJECTS_PREFIX}", listing, retry=False)

    def delete(self, obj: StoredObject) -> None:
        def drop() -> None:
            # already gone, or re-created since the listing: not ours to delete
            with contextlib.suppress(gexc.NotFound, gexc.PreconditionFailed):
                self.bucket.blob(obj.name).delete(
                    if_generation_match=obj.generation, **self._kwargs()
                )

        self.transfer.call(f"deleting {self.label}/{obj.name}", drop, retry=False)
