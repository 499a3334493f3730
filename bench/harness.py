"""Measure a step as a child process: wall seconds and the peak RSS of its process tree.

Every measured step runs as its own process (``dbt``, ``iqb``, or ``python -m
bench.steps ...``), so one step's memory never inflates the next one's figure
and the harness itself (which holds results, not data) stays out of the
numbers. The command is started by the small ``bench/launch.py``, which reads
its ``ru_maxrss`` with ``os.wait4``: the largest resident set of the command
or of any descendant it waited for (the peak a user would see in ``top``, not
a sum), without the harness's own size (see launch.py). Only the standard
library is used.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from extract.paths import ENV_ARTIFACTS

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAUNCHER = Path(__file__).with_name("launch.py")

# Child processes reach nothing beyond loopback: no dbt telemetry,
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
    cpu_seconds: float = 0.0  # user + system of the command's tree: cpu/seconds = cores busy


@dataclass(frozen=True)
class Figure:
    """The median of several samples of one step, and how many there were."""

    seconds: float
    rss_mb: float
    cpu_seconds: float
    runs: int
    all_seconds: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Figure:
        return cls(
            statistics.median(s.seconds for s in samples),
            statistics.median(s.rss_mb for s in samples),
            statistics.median(s.cpu_seconds for s in samples),
            len(samples),
            tuple(round(s.seconds, 3) for s in samples),
        )


def child_env(**extra: str) -> dict[str, str]:
    """The harness's environment plus loopback-only settings and ``extra``."""
    env = dict(os.environ)
    # Never the user's artifacts or bucket: every step names its own (make exports
    # IQB_ARTIFACTS=./artifacts).
    for name in (ENV_ARTIFACTS, "GCP_PROJECT", "GCP_BUCKET", "STORAGE_EMULATOR_HOST"):
        env.pop(name, None)
    env.update(LOOPBACK_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def run(
    cmd: Sequence[str | Path], log: Path, env: dict[str, str] | None = None, cwd: Path = REPO
) -> Sample:
    """Run one command to completion through ``bench/launch.py``; output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [str(c) for c in cmd]
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        measured = Path(fh.name)
    try:
        with open(log, "ab") as out:
            out.write(f"\n$ {' '.join(args)}\n".encode())
            out.flush()
            code = subprocess.run(
                [sys.executable, "-S", str(LAUNCHER), str(measured), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env or child_env(),
                cwd=cwd,
                check=False,
            ).returncode
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-25:]
            raise StepFailed(f"{' '.join(args)} exited {code}; log {log}:\n" + "\n".join(tail))
        result = json.loads(measured.read_text())
    finally:
        measured.unlink(missing_ok=True)
    return Sample(result["seconds"], result["maxrss_kb"] / 1024, result["cpu_seconds"])


def repeat(
    times: int, step: Callable[[], Sample], before: Callable[[], None] | None = None
) -> Figure:
    """Median of ``times`` runs of ``step``; ``before`` resets state and is not timed."""
    samples = []
    for _ in range(times):
        if before:
            before()
        samples.append(step())
    return Figure.of(samples)
