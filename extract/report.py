"""``iqb report``: what ``dbt build`` left in the DuckDB file, read read-only.

Row counts per mart, the best and worst countries by IQB score in the latest
period, and how to open the database in the ``duckdb`` shell. The database is
``<artifacts>/iqb.duckdb`` (profiles/profiles.yml puts it there).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from extract.paths import MARTS as MARTS_DIR
from extract.paths import ArtifactPaths

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


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.is_file():
        raise ReportError(
            f"no database at {path}: build it first with `{DBT_BUILD}` "
            "(or `make demo`), with the same IQB_ARTIFACTS"
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
        report = Report(database=path)
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
