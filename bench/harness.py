"""Measure a step as a child process: wall seconds and the peak RSS of its process tree.

Every measured step runs as its own process (``dbt``, ``iqb``, or ``python -m
bench.steps ...``), so one step's memory never inflates the next one's figure
and the harness itself (which holds results, not data) stays out of the
numbers. ``os.wait4`` returns the child's resource usage, whose ``ru_maxrss``
is the largest resident set of the child or of any descendant it waited for:
the peak a user would see in ``top``, not a sum. Only the standard library is
used.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Child processes reach nothing beyond loopback (DESIGN.md): no dbt telemetry,
# no GCE metadata probe.
LOOPBACK_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}


class StepFailed(RuntimeError):
    """A measured command exited non-zero; the message carries the tail of its log."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_mb: float


@dataclass(frozen=True)
class Figure:
    """The median of several samples of one step, and how many there were."""

    seconds: float
    rss_mb: float
    runs: int
    all_seconds: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Figure:
        return cls(statistics.median(s.seconds for s in samples),
                   statistics.median(s.rss_mb for s in samples), len(samples),
                   tuple(round(s.seconds, 3) for s in samples))


def child_env(**extra: str) -> dict[str, str]:
    """The harness's environment plus loopback-only settings and ``extra``."""
    env = dict(os.environ)
    env.update(LOOPBACK_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def run(cmd: Sequence[str | Path], log: Path, env: dict[str, str] | None = None,
        cwd: Path = REPO) -> Sample:
    """Run one command to completion; its output goes to ``log`` (appended)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [str(c) for c in cmd]
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(args)}\n".encode())
        fh.flush()
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT,
                                env=env or child_env(), cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        raise StepFailed(f"{' '.join(args)} exited {proc.returncode}; log {log}:\n"
                         + "\n".join(tail))
    return Sample(seconds, usage.ru_maxrss / 1024)


def repeat(times: int, step: Callable[[], Sample], before: Callable[[], None] | None = None
           ) -> Figure:
    """Median of ``times`` runs of ``step``; ``before`` resets state and is not timed."""
    samples = []
    for _ in range(times):
        if before:
            before()
        samples.append(step())
    return Figure.of(samples)
