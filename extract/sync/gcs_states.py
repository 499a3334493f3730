"""The kept states of a GCS bucket: the ``StateStore`` that history, retention and
rollback use there (``states.py`` says what a store provides).

Each kept manifest is an object ``state/manifests/<id>.json``, written
create-only (``if_generation_match=0``), with its record (``StateInfo``) as
custom metadata as well as in its body, so listing the history is one request.
Another store (S3, a file system) implements the same six calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

from google.api_core import exceptions as gexc

from extract.paths import MANIFESTS_HISTORY
from extract.sync.manifest import Manifest, ManifestError, parse_manifest
from extract.sync.remote import IMMUTABLE, GcsRemote, Remote, SyncError, public_url
from extract.sync.states import (
    STATE_ID_RE,
    KeptState,
    StateInfo,
    StateStore,
    check_state_id,
    kept_name,
)

T = TypeVar("T")


def state_store(remote: Remote, store: StateStore | None = None) -> StateStore:
    """``store``, or the kept manifests of ``remote`` when it is a GCS bucket."""
    if store is not None:
        return store
    if isinstance(remote, GcsRemote):
        return History(remote)
    raise TypeError(f"{type(remote).__name__} keeps no states: pass its StateStore")


class History:
    """The kept manifests of one GCS bucket: list, read, create-only write, delete
    (a ``StateStore``)."""

    def __init__(self, remote: GcsRemote) -> None:
        self.remote = remote

    name = staticmethod(kept_name)

    def url(self, state_id: str) -> str:
        return public_url(self.remote.bucket_name, self.name(state_id))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self.remote.transfer.call(f"{what} {self.remote.label}", fn, retry=False)

    def list(self) -> list[KeptState]:
        """Every kept copy, newest first; names that are not ``<id>.json`` are ignored."""

        def listing() -> list[KeptState]:
            found = []
            for blob in self.remote.client.list_blobs(
                self.remote.bucket_name, prefix=MANIFESTS_HISTORY, **self.remote._kwargs()
            ):
                sid = blob.name[len(MANIFESTS_HISTORY) :].removesuffix(".json")
                if blob.name.endswith(".json") and STATE_ID_RE.match(sid):
                    info = StateInfo.from_metadata(blob.metadata)
                    found.append(
                        KeptState(
                            sid,
                            blob.name,
                            int(blob.generation or 0),
                            info if info and info.id == sid else None,
                        )
                    )
            return sorted(found, key=lambda k: k.id, reverse=True)

        return self._call("listing the history in", listing)

    def read(self, state_id: str) -> Manifest:
        """A kept manifest, validated like any manifest (its ``state`` block included)."""
        name = self.name(check_state_id(state_id))

        def get() -> bytes | None:
            try:
                return self.remote.bucket.blob(name).download_as_bytes(**self.remote._kwargs())
            except gexc.NotFound:
                if not self.remote.bucket.exists(**self.remote._kwargs()):
                    raise SyncError(
                        f"bucket {self.remote.label} does not exist (or is not "
                        "visible with these credentials)"
                    ) from None
                return None

        data = self._call(f"reading {name} from", get)
        if data is None:
            raise SyncError(
                f"no kept state {state_id} in {self.remote.label} "
                "(`iqb sync history` lists the states there are)"
            )
        try:
            return parse_manifest(data, f"{self.remote.label}/{name}")
        except ManifestError as exc:
            raise SyncError(str(exc)) from None

    def keep(self, data: bytes, info: StateInfo) -> int | None:
        """Write the copy create-only; its generation, or None if that id exists already."""
        blob = self.remote.bucket.blob(self.name(info.id))
        blob.cache_control = IMMUTABLE
        blob.metadata = info.metadata()

        def put() -> int | None:
            try:
                blob.upload_from_string(
                    data,
                    content_type="application/json",
                    if_generation_match=0,
                    checksum="crc32c",
                    **self.remote._kwargs(),
                )
            except gexc.PreconditionFailed:
                return None
            return int(blob.generation or 0)

        return self._call(f"keeping {self.name(info.id)} in", put)

    def delete(self, kept: KeptState) -> None:
        def drop() -> None:
            with contextlib.suppress(gexc.NotFound, gexc.PreconditionFailed):
                self.remote.bucket.blob(kept.name).delete(
                    if_generation_match=kept.generation, **self.remote._kwargs()
                )

        self._call(f"deleting {kept.name} from", drop)

    def info(self, kept: KeptState) -> StateInfo | None:
        """The facts of a copy: from the listing, or from its body when that lacks them."""
        if kept.info is not None:
            return kept.info
        try:
            return StateInfo.from_json(self.read(kept.id).state)
        except SyncError:
            return None
