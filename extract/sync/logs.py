"""One JSONL file of per-file spans for each push or pull, under ``state/logs/``.

A span is one transfer (or publish, or delete): ``op``, ``key``, ``url``,
``start``, ``end`` (UTC, ISO 8601), ``seconds``, ``bytes``, ``ok``, ``error``.
Unlike data files, the log is appended and flushed line by line rather than
written through a temp file: a push or pull that is killed midway must still
leave the record of what it finished, which is exactly when the log matters.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from extract.paths import ArtifactPaths
from extract.sync.redact import redact


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Span:
    """Filled in by the code inside ``SpanLog.span``; written when the block ends."""

    op: str
    key: str
    url: str = ""
    bytes: int = 0


class SpanLog:
    """Append-only JSONL log of one run; safe to use from worker threads."""

    def __init__(self, artifacts: Path, op: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        self.path = ArtifactPaths(artifacts).logs / f"{op}-{stamp}-{os.getpid()}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        """Append one record; URL credentials and tokens in its strings are masked."""
        clean = {k: redact(v) if isinstance(v, str) else v for k, v in record.items()}
        with self._lock:
            try:
                self._fh.write(json.dumps(clean) + "\n")
                self._fh.flush()
            except OSError as exc:  # a full disk: say which file could not be written
                raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    @contextmanager
    def span(self, op: str, key: str, url: str = "") -> Iterator[Span]:
        """Time the block; a raised exception is logged as ``ok: false`` and re-raised."""
        span = Span(op, key, url)
        start, t0 = utc_now(), time.monotonic()
        error = ""
        try:
            yield span
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.write(
                {
                    "op": span.op,
                    "key": span.key,
                    "url": span.url,
                    "start": start,
                    "end": utc_now(),
                    "seconds": round(time.monotonic() - t0, 4),
                    "bytes": span.bytes,
                    "ok": not error,
                    "error": error,
                }
            )

    def close(self) -> None:
        with self._lock:
            try:
                self._fh.close()
            except OSError as exc:  # the last buffered line did not fit on the disk
                raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def __enter__(self) -> SpanLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
