"""The harness measures a child's own peak RSS and wall time, and reports failures with a log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.harness import Figure, Sample, StepFailed, run


def test_peak_rss_is_the_child_s_own(tmp_path: Path) -> None:
    ballast = bytearray(300 * 2**20)  # the harness is big; a small child must not look big
    small = run([sys.executable, "-c", "pass"], tmp_path / "log")
    big = run([sys.executable, "-c", "b = bytearray(400 * 2**20)"], tmp_path / "log")
    del ballast
    assert small.rss_mb < 100
    assert 400 <= big.rss_mb < 600
    assert big.seconds > 0 and big.cpu_seconds > 0


def test_failure_names_the_command_and_shows_the_log(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="exited 3") as info:
        run([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], tmp_path / "log")
    assert "boom" in str(info.value)


def test_figure_is_the_median() -> None:
    figure = Figure.of([Sample(3.0, 10, 1.0), Sample(1.0, 30, 3.0), Sample(2.0, 20, 2.0)])
    assert (figure.seconds, figure.rss_mb, figure.cpu_seconds, figure.runs) == (2.0, 20, 2.0, 3)
