"""A local index of SHA256 hashes keyed by size, modification time and inode.

Status and push over thousands of unchanged files must not re-read every byte,
so a file whose size, ``mtime_ns`` and inode match its index entry reuses the
stored hash. The inode catches a file moved or copied over another with its
timestamps kept (``mv``, ``cp -p``, ``rsync -t``): same size and mtime, new inode.
One trap (git's "racily clean" files): a file rewritten within the
timestamp granularity of its last hash keeps size and mtime. An entry is
therefore trusted only if the file's mtime was at least ``RACY_MARGIN_NS``
older than the moment the hash was taken; a fresh file is simply hashed again
next time. The index is a cache: a lost or corrupt one costs one full re-hash,
never a wrong answer, and one that cannot be saved (a read-only tree) is simply
not saved. ``iqb cache verify`` ignores it and re-reads everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from extract.cache.store import atomic_path
from extract.paths import ArtifactPaths

INDEX_VERSION = 2  # 2: the inode joined the key
RACY_MARGIN_NS = 2_000_000_000


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class HashIndex:
    """``key -> (size, mtime_ns, inode, hashed_ns, sha256)`` for files under one artifacts root."""

    def __init__(self, artifacts: Path) -> None:
        self.path = ArtifactPaths(artifacts).hash_index
        self._lock = threading.Lock()
        self._dirty = False
        self._entries: dict[str, list] = {}
        try:
            doc = json.loads(self.path.read_text())
            if doc.get("v") == INDEX_VERSION and isinstance(doc.get("files"), dict):
                self._entries = doc["files"]
        except (OSError, ValueError, AttributeError):
            pass  # missing or unreadable: start empty, files get hashed once

    def sha256(self, key: str, path: Path) -> str:
        """The file's hash, from the index when size, mtime and inode show it is unchanged."""
        st = path.stat()
        with self._lock:
            entry = self._entries.get(key)
        if (
            entry
            and len(entry) == 5
            and entry[:3] == [st.st_size, st.st_mtime_ns, st.st_ino]
            and st.st_mtime_ns + RACY_MARGIN_NS < entry[3]
        ):
            return entry[4]
        return self.rehash(key, path, st)

    def rehash(self, key: str, path: Path, st: os.stat_result | None = None) -> str:
        """Read the whole file and store its hash (what verify does for every file)."""
        st = st or path.stat()
        hashed_ns = time.time_ns()  # taken before reading: a later write moves mtime past it
        sha = file_sha256(path)
        with self._lock:
            self._entries[key] = [st.st_size, st.st_mtime_ns, st.st_ino, hashed_ns, sha]
            self._dirty = True
        return sha

    def save(self, keep: Iterable[str] | None = None) -> bool:
        """Write the index atomically; ``keep`` drops entries of files no longer there.

        Returns False when it cannot be written (read-only or full disk): the
        index only saves time, so that never fails the command using it.
        """
        with self._lock:
            if keep is not None:
                wanted = set(keep)
                stale = [k for k in self._entries if k not in wanted]
                for k in stale:
                    del self._entries[k]
                self._dirty = self._dirty or bool(stale)
            if not self._dirty:
                return True
            doc = {"v": INDEX_VERSION, "files": dict(sorted(self._entries.items()))}
            try:
                with atomic_path(self.path) as tmp:
                    tmp.write_text(json.dumps(doc, separators=(",", ":")))
            except OSError:
                return False
            self._dirty = False
            return True
