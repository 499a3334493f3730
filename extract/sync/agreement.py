"""Does the HTML report show the build a push publishes? Refuse a push when not.

A push publishes three views of one dbt build: the marts, the database
snapshot and the report (``iqb report --html``). The report is a folder of
files written at one moment; rebuild with another ``iqb_percentile``, another
``min_sample_count`` or a new month and the report still shows the old build,
while the snapshot taken by the push shows the new one. A reader of the bucket
would then see two different numbers for the same place and period.

So before anything is uploaded, the push computes what the report's summary
file (``report/data/summary.js``) would hold if it were made from the
database being snapshotted, and compares it with the file on disk: its
provenance (score percentile, periods, each period's ``min_sample_count``,
when the marts were loaded, the build id where both carry one) and its
content (countries, scores, requirements). The comparison runs on the
connection the snapshot is copied from, so it judges exactly what is
published. Any difference refuses the push and names the command that
fixes it, ``iqb report --html``; the report is not rebuilt silently (that
would overwrite the folder a user may be reviewing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from extract.paths import REPORT, ArtifactPaths
from extract.results.html.data import read_summary, read_use_cases
from extract.sync.remote import SyncError

SUMMARY = f"{REPORT}/data/summary.js"
FIX = "iqb report --html"
# Fields of summary.js that say when and where the report was written, not what it
# shows, and the build id (compared on its own, when both sides carry one).
NOT_CONTENT = ("generated_at", "commit", "database", "drill_files", "build", "build_id")


class ReportDisagrees(SyncError):
    """The report shows another build than the database being published."""


def read_report_summary(artifacts: Path) -> dict[str, Any] | None:
    """The payload of ``report/data/summary.js`` (``IQB.summary({...});``); None when
    there is no report folder. A folder whose summary cannot be read is refused: a
    report whose provenance cannot be judged must not be published."""
    report = ArtifactPaths(artifacts).report
    if not report.is_dir() or not any(p.is_file() for p in report.rglob("*")):
        return None
    path = artifacts / SUMMARY
    try:
        text = path.read_text(encoding="utf-8").strip()
        if not (text.startswith("IQB.summary(") and text.endswith(");")):
            raise ValueError("not an IQB.summary(...) script")
        doc = json.loads(text[len("IQB.summary(") : -2])
        if not isinstance(doc, dict):
            raise ValueError("its payload is not an object")
    except (OSError, ValueError) as exc:
        raise ReportDisagrees(
            f"{path}: the report's summary cannot be read ({exc}), so what build the "
            f"report shows cannot be judged; nothing was uploaded. Run `{FIX}` and push again"
        ) from None
    return doc


def _build_row(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, Any] | None:
    """``main.iqb_build`` (build id, percentile, min_sample_count) when the build wrote it."""
    cursor = con.execute(
        "select 1 from information_schema.tables where table_catalog = ? "
        "and table_schema = 'main' and table_name = 'iqb_build'",
        [catalog],
    )
    if cursor.fetchone() is None:
        return None
    quoted = '"' + catalog.replace('"', '""') + '"'
    cursor = con.execute(f"select * from {quoted}.main.iqb_build limit 1")
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description or ()], row, strict=True))


def _report_build_id(summary: dict[str, Any]) -> str | None:
    """The build id the report records, under the names it may carry it."""
    build = summary.get("build")
    for value in (
        summary.get("build_id"),
        build.get("build_id") if isinstance(build, dict) else None,
    ):
        if isinstance(value, str) and value:
            return value
    return None


def _periods(summary: dict[str, Any]) -> dict[str, Any]:
    periods = summary.get("periods")
    if not isinstance(periods, list):
        return {}
    return {
        f"{p.get('start')}..{p.get('end')}": p.get("min_sample_count")
        for p in periods
        if isinstance(p, dict)
    }


def differences(report: dict[str, Any], database: dict[str, Any]) -> list[str]:
    """What the report shows that the database does not, one readable line each."""
    lines = []
    if report.get("score_percentile") != database.get("score_percentile"):
        lines.append(
            f"scores at percentile {report.get('score_percentile')} in the report, "
            f"{database.get('score_percentile')} in the database"
        )
    ours, theirs = _periods(report), _periods(database)
    if set(ours) != set(theirs):
        gone = sorted(set(ours) - set(theirs))
        new = sorted(set(theirs) - set(ours))
        lines.append(
            "periods differ"
            + (f"; only in the report: {', '.join(gone)}" if gone else "")
            + (f"; only in the database: {', '.join(new)}" if new else "")
        )
    changed = sorted(p for p in set(ours) & set(theirs) if ours[p] != theirs[p])
    if changed:
        lines.append(
            "min_sample_count differs: "
            + ", ".join(
                f"{p} {ours[p]} in the report, {theirs[p]} in the database" for p in changed
            )
        )
    if report.get("database_built_at") != database.get("database_built_at"):
        lines.append(
            f"marts loaded at {report.get('database_built_at')} in the report, "
            f"{database.get('database_built_at')} in the database"
        )
    ours_id, theirs_id = _report_build_id(report), _report_build_id(database)
    if ours_id and theirs_id and ours_id != theirs_id:
        lines.append(f"build {ours_id} in the report, {theirs_id} in the database")
    if not lines:
        rest = sorted(
            k
            for k in set(report) | set(database)
            if k not in NOT_CONTENT and report.get(k) != database.get(k)
        )
        if rest:
            lines.append(f"the report's {', '.join(rest)} differ from the database's")
    return lines


def check_report(artifacts: Path, con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """Refuse (ReportDisagrees) when ``report/`` was not made from the database attached
    as ``catalog`` on ``con``; nothing to judge without a report folder."""
    report = read_report_summary(artifacts)
    if report is None:
        return
    con.execute(f"USE {_identifier(catalog)}")  # the report reads its relations by name
    try:
        database = read_summary(con, ArtifactPaths(artifacts).database, read_use_cases(con))
    except duckdb.Error as exc:
        raise ReportDisagrees(
            f"{ArtifactPaths(artifacts).database}: the report's relations cannot be read "
            f"({str(exc).splitlines()[0]}), so the report in {artifacts / REPORT} cannot be "
            "judged; nothing was uploaded. Run `dbt build`, then `iqb report --html`"
        ) from None
    finally:
        con.execute("USE memory")
    build = _build_row(con, catalog)
    if build is not None and build.get("build_id") and _report_build_id(report):
        database["build_id"] = str(build["build_id"])
    # as the report wrote it: through JSON, dates as ISO strings
    database = json.loads(json.dumps(database, default=str, allow_nan=False))
    lines = differences(report, database)
    if lines:
        raise ReportDisagrees(
            f"the report in {artifacts / REPORT} was not made from the build being "
            f"published ({ArtifactPaths(artifacts).database}):\n"
            + "\n".join(f"  - {line}" for line in lines)
            + f"\nNothing was uploaded: publishing both would show readers two builds. "
            f"Run `{FIX}` (it rewrites the report from this build) and push again."
        )


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
