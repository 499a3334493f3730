"""``iqb report``: what ``dbt build`` left in the DuckDB file, read read-only.

Row counts per mart, the best and worst countries by IQB score in the latest
period, and how to open the database in the ``duckdb`` shell. The database is
``<artifacts>/iqb.duckdb`` (profiles/profiles.yml puts it there).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from extract.paths import MARTS as MARTS_DIR
from extract.paths import READ_ONLY, SNAPSHOT_GLOB, ArtifactPaths

LEVELS: tuple[str, ...] = (
    "country",
    "country_asn",
    "subdivision1",
    "subdivision1_asn",
    "city",
    "city_asn",
)
MARTS: tuple[str, ...] = tuple(f"quality_by_{level}" for level in LEVELS)
SCORES: tuple[str, ...] = tuple(f"iqb_scores_by_{level}" for level in LEVELS)
DBT_BUILD = "dbt build --project-dir dbt_project --profiles-dir profiles"


class ReportError(Exception):
    """The report cannot be made; the message says what to do."""


@dataclass(frozen=True)
class MartCount:
    name: str
    rows: int
    periods: int
    latest: date | None
    meets_min_samples: int


@dataclass(frozen=True)
class CountryScore:
    country_code: str
    country_name: str | None
    iqb_score: float
    download_p95: float | None
    upload_p95: float | None
    latency_p95: float | None
    loss_p95: float | None
    samples: int | None


@dataclass
class Report:
    database: Path
    state: DatabaseState | None = None
    marts: list[MartCount] = field(default_factory=list)
    scores: list[tuple[str, int]] = field(default_factory=list)
    period: tuple[date, date] | None = None
    scored_countries: int = 0
    best: list[CountryScore] = field(default_factory=list)
    worst: list[CountryScore] = field(default_factory=list)
    synthetic_periods: list[tuple[date, date]] = field(default_factory=list)
    not_scored: dict[str, int] = field(default_factory=dict)  # score_status -> country rows


@contextmanager
def open_database(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The database read-only, closed on exit; ReportError for what a user can fix.

    The marts are views over their Parquet files by absolute path, so a file
    deleted or damaged since the build, or a database copied away from its
    artifacts folder, shows only when a query reads it. The first is turned
    into one message that names the file, and the second is refused here:
    the copy would silently read the original folder's files.
    """
    con = _connect(path)
    marts = ArtifactPaths(path.parent).marts
    try:
        _check_marts_folder(con, path, marts.resolve())
        yield con
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        if not any(f"{folder}/" in str(exc) for folder in {marts, marts.resolve()}):
            raise  # not a mart file (a caller's own SQL, through the API): DuckDB's error
        raise ReportError(
            f"{path}: a mart's Parquet file cannot be read ({str(exc).splitlines()[0]}); "
            f"`{DBT_BUILD}` re-writes a missing or damaged period"
        ) from None
    finally:
        con.close()


def pulled_snapshot(root: Path) -> Path | None:
    """The database snapshot a pull brought to ``root``: ``read_only/iqb_<UTC>.duckdb``,
    the newest that ``state/pulled.json`` records as downloaded (else the newest there).

    A researcher who pulled a published state has no ``iqb.duckdb`` (no dbt was run):
    the readers answer from this file instead, every relation a table."""
    paths = ArtifactPaths(root)
    found = sorted(paths.read_only.glob(SNAPSHOT_GLOB), reverse=True)
    if not found:
        return None
    pulled = _pulled_keys(root)
    recorded = [f for f in found if f"{READ_ONLY}/{f.name}" in pulled]
    return (recorded or found)[0]


def _pulled_document(root: Path) -> dict[str, Any]:
    try:
        doc = json.loads(ArtifactPaths(root).pulled.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _pulled_keys(root: Path) -> dict[str, str]:
    """Key -> the manifest location that delivered it, from ``state/pulled.json``."""
    origins = _pulled_document(root).get("origins")
    keys: dict[str, str] = {}
    if isinstance(origins, dict):
        for origin, files in origins.items():
            if isinstance(files, dict):
                keys.update({key: str(origin) for key in files})
    return keys


def database_file(path: Path) -> Path:
    """The file the readers open for ``<root>/iqb.duckdb``: that file when it exists (a
    local build), else the snapshot a pull brought (:func:`pulled_snapshot`), else
    ``path`` itself (whose absence the caller reports)."""
    if path.is_file():
        return path
    return pulled_snapshot(path.parent) or path


@dataclass(frozen=True)
class DatabaseState:
    """Which state a reader reads: a local build, or a pulled snapshot of a published one."""

    path: Path  # the file read
    snapshot: bool  # a pulled read_only/ snapshot, not this workspace's own build
    state_id: str | None = None  # the published state's id, when the pull recorded it
    build_id: str | None = None
    built_at: datetime | None = None
    git_commit: str | None = None
    origin: str | None = None  # the manifest the snapshot came from

    def describe(self) -> str:
        what = f"pulled snapshot {self.path.name}" if self.snapshot else f"database {self.path}"
        parts = [f"state {self.state_id}"] if self.state_id else []
        if self.build_id:
            parts.append(f"build {self.build_id}")
        if self.built_at:
            parts.append(f"built {self.built_at:%Y-%m-%d %H:%M:%S %Z}".strip())
        parts.append(f"commit {self.git_commit or 'unknown'}")
        if self.origin:
            parts.append(f"from {self.origin}")
        return f"{what} ({', '.join(parts)})"


def connected_file(con: duckdb.DuckDBPyConnection) -> Path:
    """The file a connection of :func:`open_database` reads (iqb.duckdb or a snapshot)."""
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    assert row is not None  # the current database is always listed
    return Path(row[0])


def database_state(con: duckdb.DuckDBPyConnection, path: Path) -> DatabaseState:
    """What ``con`` (opened on ``path``) holds: its build record ``iqb_build`` when the
    build wrote one, else the newest ``loaded_at`` of its country mart; for a pulled
    snapshot, the manifest it came from and that state's record when the pull kept it."""
    build_id = git_commit = None
    built_at = None
    try:
        row = con.execute("select build_id, built_at, git_commit from iqb_build").fetchone()
        if row is not None:
            build_id, built_at, git_commit = row
    except duckdb.Error:
        try:
            row = con.execute("select max(loaded_at) from quality_by_country").fetchone()
            built_at = row[0] if row else None
        except duckdb.Error:
            pass
    snapshot = path.parent.name == READ_ONLY
    state_id = origin = None
    if snapshot:
        root = path.parent.parent
        origin = _pulled_keys(root).get(f"{READ_ONLY}/{path.name}")
        states = _pulled_document(root).get("states")
        record = states.get(origin) if isinstance(states, dict) and origin else None
        if isinstance(record, dict):
            state_id = str(record.get("id")) if record.get("id") else None
            git_commit = git_commit or (str(record["commit"]) if record.get("commit") else None)
    return DatabaseState(
        path=path,
        snapshot=snapshot,
        state_id=state_id,
        build_id=build_id,
        built_at=built_at if isinstance(built_at, datetime) else None,
        git_commit=git_commit,
        origin=origin,
    )


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    path = database_file(path)
    if not path.is_file():
        raise ReportError(
            f"no database at {path}: build it first with `{DBT_BUILD}` "
            "(or `make demo`), with the same IQB_ARTIFACTS, or pull a published state "
            "with `iqb cache pull <manifest>`"
        )
    try:
        return duckdb.connect(
            str(path), read_only=True, config={"autoinstall_known_extensions": False}
        )
    except duckdb.ConnectionException:
        # This process already holds the file open with other settings (a notebook's own
        # duckdb.connect(..., read_only=True)): DuckDB then shares that instance.
        return duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise ReportError(
                f"{path} is open for writing by another process (a running "
                "dbt build?); try again when it is done"
            ) from None
        raise ReportError(f"cannot open {path}: {exc}") from None


# The first file a mart view of the published database reads (extract/transform/publish.py),
# in DuckDB's text of it.
_FIRST_FILE = re.compile(r"read_parquet\((?:main\.list_value\()?'((?:[^']|'')+)'")


def _check_marts_folder(con: duckdb.DuckDBPyConnection, path: Path, marts: Path) -> None:
    for name, sql in con.execute(
        "select view_name, sql from duckdb_views() "
        "where database_name = current_database() and schema_name = 'main'"
    ).fetchall():
        match = _FIRST_FILE.search(sql)
        if match is None:
            continue
        first = Path(match[1].replace("''", "'")).resolve()
        if not first.is_relative_to(marts):
            # the files are <marts>/.builds/<build>/<mart>/period=.../data_0.parquet
            theirs = next((p for p in first.parents if p.name == MARTS_DIR), first.parent)
            raise ReportError(
                f"{path} was built in another folder: its view {name} reads the files "
                f"under {theirs}, not {marts}. Run `{DBT_BUILD}` with "
                f"IQB_ARTIFACTS={path.parent} to point it here, or open a read_only/ "
                "snapshot of `sync push`, which holds its data"
            )


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
    }


def _country(row: tuple) -> CountryScore:
    return CountryScore(*row)


def build_report(artifacts: Path, top: int = 5) -> Report:
    path = ArtifactPaths(artifacts).database
    with open_database(path) as con:
        missing = [n for n in (*MARTS, *SCORES) if n not in _tables(con)]
        if missing:
            raise ReportError(
                f"{path} lacks {', '.join(missing)}: run `{DBT_BUILD}` (it builds every mart)"
            )
        report = Report(database=database_file(path))
        report.state = database_state(con, report.database)
        for name in MARTS:
            counts = con.execute(
                f"select count(*), count(distinct (period_start, period_end)), "
                f"max(period_start), count(*) filter (where meets_min_samples) from {name}"
            ).fetchone()
            assert counts is not None  # an aggregate without GROUP BY returns one row
            rows, periods, latest, meets = counts
            report.marts.append(MartCount(name, rows, periods, latest, meets))
        for name in SCORES:
            scored = con.execute(f"select count(iqb_score) from {name}").fetchone()
            assert scored is not None  # an aggregate without GROUP BY returns one row
            report.scores.append((name, scored[0]))
        report.synthetic_periods = [
            tuple(r)
            for r in con.execute(
                " union ".join(
                    f"select period_start, period_end from {name} where is_synthetic"
                    for name in MARTS
                )
                + " order by 1, 2"
            ).fetchall()
        ]
        report.not_scored = dict(
            con.execute(
                "select score_status, count(*) from iqb_scores_by_country "
                "where score_status in ('invalid_values', 'unknown_country') group by 1 order by 1"
            ).fetchall()
        )
        # The latest period that has any score (a month still filling up with
        # thin cells would otherwise show an empty table).
        period = con.execute(
            "select period_start, period_end from iqb_scores_by_country "
            "where iqb_score is not null "
            "order by period_start desc, period_end desc limit 1"
        ).fetchone()
        if period is None:
            return report
        report.period = (period[0], period[1])
        select = (
            "select country_code, country_name, iqb_score, download_p95, upload_p95, "
            "latency_p95, loss_p95, least(download_sample_count, upload_sample_count) "
            "from iqb_scores_by_country "
            "where period_start = ? and period_end = ? and iqb_score is not null "
        )
        # Many countries tie on the score (it moves in steps of the weights):
        # ties are broken by download p95, then by code, so the list is stable.
        report.best = [
            _country(r)
            for r in con.execute(
                select + "order by iqb_score desc, download_p95 desc, country_code limit ?",
                [*period, top],
            ).fetchall()
        ]
        report.worst = [
            _country(r)
            for r in con.execute(
                select + "order by iqb_score asc, download_p95 asc, country_code limit ?",
                [*period, top],
            ).fetchall()
        ]
        scored = con.execute(
            "select count(*) from iqb_scores_by_country "
            "where period_start = ? and period_end = ? and iqb_score is not null",
            list(period),
        ).fetchone()
        assert scored is not None  # an aggregate without GROUP BY returns one row
        report.scored_countries = scored[0]
        return report


def shell_command(database: Path) -> str:
    """How to open the database in the duckdb shell, from the current directory."""
    venv_cli = Path(sys.executable).parent / "duckdb"
    cli = _display(venv_cli) if venv_cli.exists() else (shutil.which("duckdb") or "duckdb")
    return f"{cli} -readonly {_display(database)}"


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path.absolute())
    except ValueError:  # another drive (Windows)
        return str(path)
    return rel if not rel.startswith("..") else str(path.absolute())
