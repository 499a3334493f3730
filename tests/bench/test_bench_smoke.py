"""`make bench` at tiny sizes, so that the command cannot rot (its figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.report import REQUIRED
from tests.conftest import REPO


def test_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--work",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads((out / "smoke.json").read_text())
    assert doc["smoke"] is True
    assert doc["unavailable"] == {}, doc["unavailable"]
    for key in REQUIRED:
        assert isinstance(doc[key], float | int) and doc[key] > 0, key
    assert doc["machine"]["cores"] >= 1
    assert {"duckdb", "dbt-core", "pyarrow", "pandas"} <= set(doc["versions"])
    markdown = (out / "smoke.md").read_text()
    assert "| build | dbt build" in markdown
    assert "| sync | push" in markdown
    assert "| scale | dbt build, 4 months" in markdown
    assert markdown in proc.stdout
