"""The manifest: upstream's format (version 0) plus a ``size`` per file, and key safety.

``{"v": 0, "files": {key: {"sha256": hex, "url": url, "size": bytes}}}``. A key
is a relative path under the artifacts root; a reader writes the file there, so
a key is the one thing in a manifest that decides where bytes land on disk.
Keys are therefore accepted only inside the known layout: the cache layout
(``parse_cache_key``) or the short allow-list of files this workspace publishes
itself. Anything else, and any manifest that does not parse, is rejected whole,
before a single byte is written.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extract.cache.layout import cache_key_period, parse_cache_key
from extract.paths import (
    CACHE_VERSION_DIR,
    MARTS,
    PUBLISHED_TREES,
    READ_ONLY,
    REPORT,
    SNAPSHOT_KEY_RE,
)

MANIFEST_VERSION = 0
# dbt's Parquet exports: marts/<name>.parquet, optionally in hive-style folders
MARTS_RE = re.compile(
    rf"^{MARTS}/(?:[A-Za-z0-9_][A-Za-z0-9_=.-]*/)*[A-Za-z0-9_][A-Za-z0-9_=.-]*"
    r"\.parquet$"
)
# The HTML report of `iqb report --html`: report/index.html, report/{assets,data}/*
REPORT_RE = re.compile(
    rf"^{REPORT}/(?:(?:assets|data)/)?[A-Za-z0-9_][A-Za-z0-9_.-]*"
    r"\.(?:html|js|css)$"
)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_LISTED = 20


class ManifestError(ValueError):
    """Every problem of one manifest; ``str()`` names the manifest and each problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:_MAX_LISTED])
        more = len(problems) - _MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{source}: {len(problems)} problem(s) in the manifest; nothing was "
            f"written:\n{shown}{tail}"
        )


def key_problem(key: str) -> str | None:
    """Why ``key`` may not be written under the artifacts root, or None if it may."""
    if not isinstance(key, str) or not key:
        return f"{key!r}: empty or not a string"
    if key.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", key) or "\\" in key:
        return f"{key!r}: absolute path or backslash"
    segments = key.split("/")
    if ".." in segments:
        return f"{key!r}: contains '..'"
    if any(s in ("", ".") for s in segments):
        return f"{key!r}: empty or '.' path segment"
    if (cached := cache_key_period(key)) is not None and cached[2] is not None:
        return f"{key!r}: period {cached[2]}"
    if (
        parse_cache_key(key)
        or SNAPSHOT_KEY_RE.match(key)
        or MARTS_RE.match(key)
        or REPORT_RE.match(key)
    ):
        return None
    return (
        f"{key!r}: outside the known layout ({CACHE_VERSION_DIR}/<start>/<end>/<dataset>/"
        f"{{data.parquet,stats.json}}, {READ_ONLY}/iqb_<UTC>.duckdb, {MARTS}/*.parquet, "
        f"{REPORT}/*.{{html,js,css}})"
    )


@dataclass(frozen=True)
class FileRecord:
    """One file of the manifest; ``size`` is absent in upstream manifests."""

    sha256: str
    url: str
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"sha256": self.sha256, "url": self.url}
        if self.size is not None:
            doc["size"] = self.size
        return doc


@dataclass
class Manifest:
    files: dict[str, FileRecord] = field(default_factory=dict)
    # The published state's record (id, time, commit, counts; extract/sync/states.py).
    # Not part of ``dumps``: two manifests with the same files are the same state.
    state: dict[str, Any] | None = None

    def dumps(self) -> bytes:
        """Deterministic bytes: same files, same manifest, so an unchanged push is a no-op."""
        doc = {
            "v": MANIFEST_VERSION,
            "files": {k: self.files[k].to_json() for k in sorted(self.files)},
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _record(key: str, value: Any, problems: list[str]) -> FileRecord | None:
    if not isinstance(value, dict):
        problems.append(f"{key!r}: entry is not an object")
        return None
    sha, url, size = value.get("sha256"), value.get("url"), value.get("size")
    ok = True
    if not isinstance(sha, str) or not _SHA256_RE.match(sha):
        problems.append(f"{key!r}: sha256 is not 64 lowercase hex digits")
        ok = False
    if not isinstance(url, str) or not url:
        problems.append(f"{key!r}: url is missing")
        ok = False
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        problems.append(f"{key!r}: size is not a non-negative integer")
        ok = False
    if not ok:
        return None
    assert isinstance(sha, str) and isinstance(url, str)  # checked above; narrows for mypy
    return FileRecord(sha, url, size)


def parse_manifest(data: bytes, source: str) -> Manifest:
    """Validate a whole manifest; raise ManifestError listing every problem."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(source, [f"not JSON: {exc}"]) from None
    if not isinstance(doc, dict):
        raise ManifestError(source, ["top level is not an object"])
    problems: list[str] = []
    if doc.get("v") != MANIFEST_VERSION:
        problems.append(f"v is {doc.get('v')!r}, expected {MANIFEST_VERSION}")
    files = doc.get("files")
    if not isinstance(files, dict):
        raise ManifestError(source, [*problems, "files is missing or not an object"])
    manifest = Manifest()
    for key, value in files.items():
        problem = key_problem(key)
        if problem:
            problems.append(problem)
            continue
        record = _record(key, value, problems)
        if record:
            manifest.files[key] = record
    if problems:
        raise ManifestError(source, problems)
    if isinstance(doc.get("state"), dict):
        manifest.state = doc["state"]
    return manifest


def publishable_files(artifacts: Path) -> dict[str, Path]:
    """Every local file a push publishes, by key; hidden temp files are skipped."""
    found: dict[str, Path] = {}
    for tree in PUBLISHED_TREES:
        top = artifacts / tree
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                path = Path(dirpath) / name
                key = path.relative_to(artifacts).as_posix()
                if not name.startswith(".") and key_problem(key) is None:
                    found[key] = path
    return dict(sorted(found.items()))
