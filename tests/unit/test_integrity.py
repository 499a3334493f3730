"""Present means verified: damaged, misplaced or unrecorded cache files are caught, never read.

Real files throughout: a raw sample run through the embedded engine, M-Lab's real
October 2024 entries from tests/fixtures, and the CLI as users run it.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from extract.cache.catalog import SYNTHETIC, Integrity, check_entry, scan
from extract.cache.layout import Entry
from extract.cache.state import EntryState, entry_state, entry_status
from extract.cache.templates import normalised_sql, template_hash, template_text
from extract.cli import app
from extract.datasets import DATASETS_BY_NAME
from extract.extraction.engines import Query, QueryResult
from extract.extraction.engines.duckdb import DuckDBEngine
from extract.extraction.runner import RunOptions, Summary, run_matrix
from extract.extraction.sample.generate import write_sample

SEP, OCT, NOV = date(2024, 9, 1), date(2024, 10, 1), date(2024, 11, 1)
REAL = Path(__file__).resolve().parents[1] / "fixtures" / "cache"
TWO_MONTHS = """\
version: 0
matrix:
  dates:
    - {months: "2024-09..2024-10"}
  granularities: [country]
"""


def iqb(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception  # never a traceback
    return result.exit_code, result.output


def entry(name: str, start: date = OCT, end: date = NOV) -> Entry:
    return Entry(DATASETS_BY_NAME[name], start, end)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_sample(root, [SEP, OCT], rows=20_000, seed=3)
    return root


@pytest.fixture
def built(tmp_path: Path, sampled: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """September and October, country level, extracted from the synthetic sample."""
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "raw").symlink_to(sampled / "raw")
    monkeypatch.setenv("IQB_ARTIFACTS", str(root))
    (tmp_path / "pipeline.yaml").write_text(TWO_MONTHS)
    monkeypatch.chdir(tmp_path)
    code, output = iqb("extract", "run")
    assert code == 0, output
    return root


def status_json() -> dict:
    code, output = iqb("cache", "status", "--json")
    assert code == 0, output
    return json.loads(output)


def state_of(doc: dict, e: Entry) -> dict:
    return next(x for x in doc["entries"] if x["key"] == e.key)


def test_every_written_entry_records_what_its_file_is(built: Path) -> None:
    e = entry("downloads_by_country")
    stats = json.loads(e.stats_path(built).read_text())
    data = e.data_path(built)
    assert stats["size"] == data.stat().st_size
    assert stats["rows"] == pq.read_metadata(data).num_rows > 0
    assert (stats["dataset"], stats["period_start"], stats["period_end"]) == (
        "downloads_by_country",
        "2024-10-01",
        "2024-11-01",
    )
    assert stats["source"]["kind"] == SYNTHETIC and stats["source"]["engine"] == "duckdb"
    assert stats["source"]["files"] == ["raw/unified_downloads/2024-10.parquet"]
    assert status_json()["counts"] == {"present": 4}


def test_truncated_file_is_corrupt_and_remade_without_force(built: Path) -> None:
    e = entry("uploads_by_country")
    data = e.data_path(built)
    good = data.read_bytes()
    data.write_bytes(good[: len(good) // 2])
    doc = status_json()
    assert doc["counts"] == {"present": 3, "corrupt": 1}
    assert "truncated or replaced" in state_of(doc, e)["reason"]
    code, output = iqb("cache", "status")
    assert "corrupt" in output and e.key in output and "iqb extract run" in output

    code, output = iqb("extract", "run")
    assert code == 0, output
    assert "done" in output
    assert entry_state(e, built) == EntryState.PRESENT
    assert pq.read_table(data).num_rows > 0


def test_a_file_from_another_period_is_corrupt(built: Path) -> None:
    oct_, sep = entry("downloads_by_country"), entry("downloads_by_country", SEP, OCT)
    shutil.copy2(sep.data_path(built), oct_.data_path(built))  # keeps September's mtime
    assert check_entry(oct_, built).integrity == Integrity.CORRUPT
    assert state_of(status_json(), oct_)["state"] == "corrupt"
    # both files copied: the record itself names September
    shutil.copy2(sep.stats_path(built), oct_.stats_path(built))
    reason = state_of(status_json(), oct_)["reason"]
    assert "period_start '2024-09-01', the path says '2024-10-01'" in reason
    # and a file of another dataset with its record
    up = entry("uploads_by_country")
    shutil.copy2(up.data_path(built), oct_.data_path(built))
    shutil.copy2(up.stats_path(built), oct_.stats_path(built))
    assert "dataset 'uploads_by_country'" in state_of(status_json(), oct_)["reason"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "stats.json is missing"),
        ("[1, 2]", "stats.json is not a JSON object (it holds a list)"),
        ("{not json", "stats.json is not valid JSON"),
        ('"text"', "stats.json is not a JSON object (it holds a str)"),
    ],
)
def test_a_broken_record_is_corrupt_for_every_command(
    built: Path, content: str | None, reason: str
) -> None:
    e = entry("downloads_by_country", SEP, OCT)
    if content is None:
        e.stats_path(built).unlink()
    else:
        e.stats_path(built).write_text(content)
    doc = status_json()
    assert state_of(doc, e) == {
        "key": e.key,
        "state": "corrupt",
        "reason": reason,
        "source": "unknown",
        "left_out_invalid": None,  # no record, no count
    }
    code, output = iqb("cache", "usage", "--json")
    assert code == 0, output
    code, output = iqb("cache", "verify")
    assert code == 1 and f"corrupt {e.key}: {reason}" in " ".join(output.split())
    code, output = iqb("extract", "run")  # repaired without --force
    assert code == 0, output
    assert entry_state(e, built) == EntryState.PRESENT
    assert status_json()["counts"] == {"present": 4}


def test_real_upstream_entries_are_unverified_then_verified(artifacts: Path) -> None:
    shutil.copytree(REAL, artifacts / "cache")
    e = entry("downloads_by_country")
    found = scan(artifacts)
    assert [c.integrity for c in found] == [Integrity.UNVERIFIED] * 2
    assert all(c.source_kind == "upstream" for c in found)
    # upstream's template hash counts as current: not stale
    assert entry_status(e, artifacts).state == EntryState.UNVERIFIED

    stats_before = e.stats_path(artifacts).read_bytes()
    code, output = iqb("cache", "verify")
    assert code == 0, output
    assert "2 entries: 0 present, 2 newly verified, 0 unverified, 0 corrupt" in output
    assert e.stats_path(artifacts).read_bytes() == stats_before  # upstream's file untouched
    assert entry_status(e, artifacts).state == EntryState.PRESENT
    code, output = iqb("cache", "verify")
    assert "2 entries: 2 present, 0 newly verified" in output

    # once recorded, a changed byte is caught (same size, so only the hash tells)
    data = e.data_path(artifacts)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    status = entry_status(e, artifacts)
    assert status.state == EntryState.CORRUPT
    assert "iqb cache verify" in status.reason


def test_an_upstream_entry_that_is_not_the_dataset_is_corrupt(artifacts: Path) -> None:
    shutil.copytree(REAL, artifacts / "cache")
    down, up = entry("downloads_by_country"), entry("uploads_by_country")
    shutil.copy(up.data_path(artifacts), down.data_path(artifacts))  # no download columns
    c = check_entry(down, artifacts)
    assert c.integrity == Integrity.CORRUPT and "lacks the dataset's columns" in c.reason
    down.data_path(artifacts).write_bytes(b"PAR1 not really")
    c = check_entry(down, artifacts)
    assert c.integrity == Integrity.CORRUPT and "not readable Parquet" in c.reason


def test_template_hash_ignores_comments_and_layout() -> None:
    ds = DATASETS_BY_NAME["downloads_by_country"]
    text = template_text(ds)
    relaid = "-- a new comment\n" + text.replace("\n", "\n\n   ").replace(",", " ,")
    assert normalised_sql(relaid) == normalised_sql(text)
    assert normalised_sql(text.replace("OFFSET(95)", "OFFSET(96)")) != normalised_sql(text)
    assert len(template_hash(ds)) == 64


def test_upstream_hashes_are_listed_with_their_provenance() -> None:
    doc = json.loads(
        (
            Path(__file__).resolve().parents[2]
            / "extract"
            / "extraction"
            / "templates"
            / "upstream_hashes.json"
        ).read_text()
    )
    assert "m-lab/iqb" in doc["source"] and "stats.json" in doc["comment"]
    for name in ("downloads_by_country", "uploads_by_country"):
        real = json.loads(
            (REAL / "v1/20241001T000000Z/20241101T000000Z" / name / "stats.json").read_text()
        )
        assert real["template_hash"] in doc["hashes"][name]


def test_raw_files_without_the_sample_mark_are_raw(
    tmp_path: Path, sampled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded engine over the user's own raw files: source.kind is raw, not synthetic."""
    root = tmp_path / "artifacts"
    for table in ("unified_downloads", "unified_uploads"):
        src = pq.read_table(sampled / "raw" / table / "2024-10.parquet")
        (root / "raw" / table).mkdir(parents=True)
        pq.write_table(src.replace_schema_metadata({}), root / "raw" / table / "mine.parquet")
    monkeypatch.setenv("IQB_ARTIFACTS", str(root))
    (tmp_path / "p.yaml").write_text(TWO_MONTHS.replace("2024-09..2024-10", "2024-10..2024-10"))
    code, output = iqb("extract", "run", "--config", str(tmp_path / "p.yaml"))
    assert code == 0, output
    stats = json.loads(entry("downloads_by_country").stats_path(root).read_text())
    assert stats["source"] == {
        "kind": "raw",
        "engine": "duckdb",
        "files": ["raw/unified_downloads/mine.parquet"],
    }


class SlowDuckDB(DuckDBEngine):
    """The real embedded engine, counting its queries and slow enough for runs to overlap."""

    def __init__(self, artifacts: Path) -> None:
        super().__init__(artifacts, threads=1)
        self.queries: list[str] = []
        self.lock = threading.Lock()

    def run(self, query: Query) -> QueryResult:
        with self.lock:
            self.queries.append(f"{query.dataset} {query.start}")
        time.sleep(0.3)
        return super().run(query)


def test_two_forced_runs_at_once_query_each_entry_once(built: Path) -> None:
    entries = [
        entry(n, s, e)
        for n in ("downloads_by_country", "uploads_by_country")
        for s, e in ((SEP, OCT), (OCT, NOV))
    ]
    engines = [SlowDuckDB(built), SlowDuckDB(built)]
    gate = threading.Barrier(2)
    summaries: list[Summary] = []

    def one_run(engine: SlowDuckDB) -> None:
        gate.wait()
        summaries.append(run_matrix(entries, engine, built, RunOptions(force=True, jobs=2)))

    threads = [threading.Thread(target=one_run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    queries = engines[0].queries + engines[1].queries
    assert sorted(queries) == sorted(set(queries)) and len(queries) == 4, queries
    outcomes = sorted(r.outcome.value for s in summaries for r in s.reports)
    assert outcomes == ["done"] * 4 + ["skipped"] * 4
    assert all(entry_state(e, built) == EntryState.PRESENT for e in entries)


def test_a_forced_run_after_another_finished_runs_again(built: Path) -> None:
    """Only entries made *during* a run are skipped: a later --force really re-runs."""
    e = entry("uploads_by_country")
    before = json.loads(e.stats_path(built).read_text())["query_start_time"]
    engine = SlowDuckDB(built)
    summary = run_matrix([e], engine, built, RunOptions(force=True))
    assert [r.outcome.value for r in summary.reports] == ["done"] and len(engine.queries) == 1
    assert json.loads(e.stats_path(built).read_text())["query_start_time"] != before


def test_a_cached_run_reads_no_data_file_twice(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner checks entries through one saved hash index: unchanged files are not
    re-read on every run (a 2,460-entry cache would be read whole each time)."""
    import extract.cache.hashindex as hashindex

    hour_ago = time.time_ns() - 3600 * 10**9
    for data in built.rglob("data.parquet"):
        os.utime(data, ns=(hour_ago, hour_ago))  # older than the index's racy margin
    reads: list[Path] = []
    real = hashindex.file_sha256

    def counted(path: Path) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(hashindex, "file_sha256", counted)
    code, output = iqb("extract", "run")
    assert code == 0 and "skipped" in output
    assert len(reads) == 4  # once, to fill the index
    reads.clear()
    code, output = iqb("extract", "run")
    assert code == 0 and "skipped" in output
    assert reads == []


def test_entries_of_an_earlier_query_are_stale_and_listed_ones_current(built: Path) -> None:
    """An entry written by another query is stale; one listed as the same rows is current.

    The templates of commit b1046af kept NaN and infinite measurements: another
    query, so its entries are stale. previous_hashes.json lists the templates of the
    commit it names, which left those measurements out in WHERE instead of counting
    them: the same rows, so their entries stay current.
    """
    import hashlib
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    doc = json.loads(
        (repo / "extract" / "extraction" / "templates" / "previous_hashes.json").read_text()
    )

    def shown(commit: str, ds: str) -> str:
        proc = subprocess.run(
            ["git", "show", f"{commit}:extract/templates/{ds}.sql"],
            capture_output=True,
            text=True,
            cwd=repo,
        )
        if proc.returncode != 0:
            pytest.skip("no git history here")
        return proc.stdout

    for ds, listed in doc["hashes"].items():
        old = normalised_sql(shown(doc["commit"], ds))
        assert listed == [hashlib.sha256(old.encode()).hexdigest()], ds
        assert old != normalised_sql(template_text(DATASETS_BY_NAME[ds]))
    e = entry("downloads_by_country")
    stats = json.loads(e.stats_path(built).read_text())
    stats["template_hash"] = doc["hashes"]["downloads_by_country"][0]
    e.stats_path(built).write_text(json.dumps(stats))
    assert entry_state(e, built) == EntryState.PRESENT
    older = shown("b1046af", "downloads_by_country")
    stats["template_hash"] = hashlib.sha256(older.encode()).hexdigest()
    e.stats_path(built).write_text(json.dumps(stats))
    assert entry_state(e, built) == EntryState.STALE
