"""Running dbt, the iqb CLI and the duckdb shell as a user does: real processes, real files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from extract.paths import ArtifactPaths
from tests.conftest import REAL_CACHE, REPO

BIN = Path(sys.executable).parent
DBT = BIN / "dbt"
IQB = BIN / "iqb"
DUCKDB_CLI = BIN / "duckdb"
PROJECT = REPO / "dbt_project"
PROFILES = REPO / "profiles"
OCT_2024 = "cache/v1/20241001T000000Z/20241101T000000Z"


@dataclass
class DbtRun:
    returncode: int
    output: str
    run_results: dict

    def statuses(self) -> dict[str, str]:
        """unique_id -> status of every node the run executed."""
        return {r["unique_id"]: r["status"] for r in self.run_results.get("results", [])}


def env(artifacts: Path | None) -> dict[str, str]:
    """The process environment for dbt: no telemetry, IQB_ARTIFACTS set or unset."""
    e = dict(os.environ)
    e.update(
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DO_NOT_TRACK="1",
        NO_COLOR="1",
        DBT_USE_COLORS="false",
    )
    e.pop("DBT_PROFILES_DIR", None)
    e.pop("DBT_PROJECT_DIR", None)
    if artifacts is None:
        e.pop("IQB_ARTIFACTS", None)
    else:
        e["IQB_ARTIFACTS"] = str(artifacts)
    return e


def dbt(
    *args: str,
    artifacts: Path | None,
    target: Path,
    cwd: Path = REPO,
    project_args: tuple[str, ...] | None = None,
    check: bool = True,
) -> DbtRun:
    """Run the dbt CLI. ``target`` keeps this run's target/ and logs/ out of the repo.

    project_args default to the repo-root style, ``--project-dir dbt_project
    --profiles-dir profiles`` (relative: they are resolved against ``cwd``).
    """
    if project_args is None:
        project_args = ("--project-dir", "dbt_project", "--profiles-dir", "profiles")
    cmd = [
        str(DBT),
        *args,
        *project_args,
        "--target-path",
        str(target),
        "--log-path",
        str(target / "logs"),
    ]
    proc = subprocess.run(
        cmd, cwd=cwd, env=env(artifacts), capture_output=True, text=True, timeout=600
    )
    results_file = target / "run_results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    run = DbtRun(proc.returncode, proc.stdout + proc.stderr, results)
    if check and proc.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed ({proc.returncode}):\n{run.output}")
    return run


def copy_real_october(
    artifacts: Path, datasets: tuple[str, ...] = ("downloads_by_country", "uploads_by_country")
) -> None:
    """The real M-Lab country files of October 2024 into an artifacts root's cache."""
    for name in datasets:
        src = REAL_CACHE / "v1/20241001T000000Z/20241101T000000Z" / name
        shutil.copytree(src, artifacts / OCT_2024 / name)


def rewrite_entry(
    root: Path, dataset: str, change: Callable[[pa.Table], pa.Table], period: str = OCT_2024
) -> None:
    """Replace an entry's data as a re-extraction would: new file, matching stats.json."""
    data = root / period / dataset / "data.parquet"
    pq.write_table(change(pq.read_table(data)), data)
    stats_path = data.with_name("stats.json")
    stats = json.loads(stats_path.read_text())
    stats.update(size=data.stat().st_size, sha256=hashlib.sha256(data.read_bytes()).hexdigest())
    stats_path.write_text(json.dumps(stats))


def repo_copy(tmp_path: Path) -> Path:
    """profiles/ and dbt_project/ (without build output) under a fresh root."""
    root = tmp_path / "repo"
    shutil.copytree(PROFILES, root / "profiles")
    shutil.copytree(
        PROJECT,
        root / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    return root


def query(artifacts: Path, sql: str, params: list | None = None) -> list[tuple]:
    """SQL on the published database, as a reader runs it."""
    with duckdb.connect(str(artifacts / "iqb.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def unchanged_views(output: str) -> set[str]:
    """Views a dbt run found unchanged, not re-created (macros/materializations/view.sql)."""
    return set(re.findall(r"OK created sql view model (\S+) .*unchanged", output))


def query_working(artifacts: Path, sql: str) -> list[tuple]:
    """SQL on dbt's working database (its staging views, what the tests read)."""
    with duckdb.connect(str(ArtifactPaths(artifacts).working_database), read_only=True) as con:
        return con.execute(sql).fetchall()


def shell(
    database: Path, sql: str, *flags: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The duckdb command-line shell, read-only, one SQL text on its stdin."""
    return subprocess.run(
        [str(DUCKDB_CLI), "-readonly", *flags, str(database)],
        input=sql,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
