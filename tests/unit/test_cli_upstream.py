"""Upstream habits: -j for --jobs, `iqb pipeline run`, `iqb cache pull mlab` (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from extract.cli import app
from extract.extraction.manifests import resolve_manifest
from tests.conftest import REAL_MANIFESTS, REPO
from tests.dbt.helpers import copy_real_october

runner = CliRunner()


def commands(command: object, prefix: str = "") -> dict[str, typer.core.TyperCommand]:
    """Every leaf command of the CLI by its full name (typer ships its own click)."""
    if isinstance(command, typer.core.TyperGroup):
        found: dict[str, typer.core.TyperCommand] = {}
        for name, sub in command.commands.items():
            found.update(commands(sub, f"{prefix}{name} "))
        return found
    assert isinstance(command, typer.core.TyperCommand), command
    return {prefix.strip(): command}


def test_every_jobs_option_has_the_short_j() -> None:
    with_jobs = {
        name: cmd
        for name, cmd in commands(typer.main.get_command(app)).items()
        if any(p.name == "jobs" for p in cmd.params)
    }
    assert {"extract run", "pipeline run", "cache pull", "cache verify", "sync push"} <= set(
        with_jobs
    )
    for name, cmd in with_jobs.items():
        opts = next(p for p in cmd.params if p.name == "jobs").opts
        assert "-j" in opts and "--jobs" in opts, name


def test_pipeline_run_is_extract_run(tmp_path: Path) -> None:
    args = [
        "--config",
        str(REPO / "pipeline.demo.yaml"),
        "--dry-run",
        "-j",
        "3",
        "--artifacts",
        str(tmp_path),
    ]
    upstream = runner.invoke(app, ["pipeline", "run", *args])
    ours = runner.invoke(app, ["extract", "run", *args])
    assert upstream.exit_code == ours.exit_code == 0, upstream.output
    assert "would run  downloads_by_country 2024-09-01..2024-10-01" in upstream.output
    assert upstream.output == ours.output
    bad = runner.invoke(app, ["pipeline", "run", "-j", "0", "--artifacts", str(tmp_path)])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_mlab_names_the_shipped_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = Path(resolve_manifest("mlab"))
    assert shipped.read_bytes() == (REAL_MANIFESTS / "mlab-bucket-manifest.json").read_bytes()
    assert len(json.loads(shipped.read_text())["files"]) == 4900
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlab").write_text("{}")  # a file of that name wins
    assert resolve_manifest("mlab") == "mlab"
    assert resolve_manifest("https://example.invalid/m.json") == "https://example.invalid/m.json"


def test_cache_status_against_mlab_offline(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    copy_real_october(root)  # M-Lab's real October 2024 country files
    result = runner.invoke(
        app,
        [
            "cache",
            "status",
            "--manifest",
            "mlab",
            "--granularity",
            "country",
            "--start",
            "2024-10",
            "--end",
            "2024-11",
            "--json",
            "--artifacts",
            str(root),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    # the files here are byte for byte the ones M-Lab's manifest lists
    assert doc["counts"] == {"same": 4}


def test_cache_pull_mlab_finds_the_real_files_already_here(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    copy_real_october(root)
    result = runner.invoke(
        app,
        [
            "cache",
            "pull",
            "mlab",
            "-j",
            "2",
            "--granularity",
            "country",
            "--start",
            "2024-10",
            "--end",
            "2024-11",
            "--artifacts",
            str(root),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "downloaded 0 file(s), 0.0 MB; 4 already here" in result.output
