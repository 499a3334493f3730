"""What a user reads: `iqb --version`, and help that a pipe does not cut."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

IQB = Path(sys.executable).with_name("iqb")


def run(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # as a user's pipe has it
    proc = subprocess.run([str(IQB), *args], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_version() -> None:
    assert run("--version").strip() == f"iqb {version('iqb-workspace')}"


def test_piped_help_names_every_option_and_variable_whole() -> None:
    text = run("extract", "run", "--help")
    for name in (
        "--maximum-bytes-billed",
        "--price-per-tib",
        "IQB_REMOTE_MANIFEST",
        "IQB_ARTIFACTS",
    ):
        assert name in text, name
    assert "…" not in text


def test_test_only_switches_are_not_options() -> None:
    """The BigQuery emulator is reached through the environment (docs/bigquery.md)."""
    text = run("extract", "run", "--help")
    assert "emulator" not in text.lower(), text


def test_a_flag_reads_as_a_flag() -> None:
    """typer 0.29 printed `--help <bool>`, as if a flag took a value (pinned 0.28)."""
    text = run("sync", "push", "--help")
    assert "--dry-run" in text and "--allow-synthetic" in text
    assert "<bool>" not in text, text
