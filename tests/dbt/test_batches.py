"""Small periods written in batches: one statement, the same files as one period at a time.

Real dbt builds over M-Lab's real October 2024 country files, present twice in
the cache (as September and October), so quality_by_country has two small
periods: the default var period_batch_bytes writes them in one statement,
`period_batch_bytes: 0` one statement each.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extract.paths import ArtifactPaths
from extract.transform.marts import BATCH_MAX_PERIODS, batches
from extract.transform.publish import load_published
from tests.dbt.helpers import OCT_2024, DbtRun, copy_real_october, dbt, query, rewrite_entry

pytestmark = pytest.mark.slow

SEP_2024 = "cache/v1/20240901T000000Z/20241001T000000Z"
SEP, OCT = "2024-09-01_2024-10-01", "2024-10-01_2024-11-01"
DATASETS = ("downloads_by_country", "uploads_by_country")
ALONE = "{period_batch_bytes: 0}"


def two_months(root: Path) -> Path:
    """The real October files, and the same files as September's entries."""
    copy_real_october(root)
    for name in DATASETS:
        shutil.copytree(root / OCT_2024 / name, root / SEP_2024 / name)
    return root


def build(root: Path, target: Path, *args: str, check: bool = True) -> DbtRun:
    return dbt(
        "build",
        "--select",
        "+quality_by_country",
        *args,
        artifacts=root,
        target=target,
        check=check,
    )


def statements(run: DbtRun) -> str:
    """What the build said it did for quality_by_country."""
    m = re.search(
        r"quality_by_country: \d+ period\(s\) to process \[[^]]*\]( in \d+ statement\(s\))?",
        run.output,
    )
    assert m, run.output
    return m[0]


def rows(root: Path) -> dict[str, list[tuple]]:
    """Each period's rows of the published mart, all columns but loaded_at, sorted."""
    out: dict[str, list[tuple]] = {}
    for row in query(root, "select * exclude (loaded_at) from quality_by_country order by all"):
        out.setdefault(f"{row[0]}_{row[1]}", []).append(row)
    return out


def files(root: Path) -> dict[str, list[Path]]:
    """The public files of quality_by_country, per period folder."""
    folder = root / "marts" / "quality_by_country"
    return {d.name.removeprefix("period="): sorted(d.iterdir()) for d in sorted(folder.iterdir())}


def test_a_batch_writes_what_one_period_at_a_time_writes(tmp_path: Path) -> None:
    batched, alone = two_months(tmp_path / "batched"), two_months(tmp_path / "alone")
    run = build(batched, tmp_path / "t1")
    assert statements(run).endswith(f"[{SEP!r}, {OCT!r}] in 1 statement(s)")
    assert statements(build(alone, tmp_path / "t2", "--vars", ALONE)).endswith(
        f"[{SEP!r}, {OCT!r}]"
    )

    # the same rows, provenance included; September's are October's with other dates
    assert rows(batched) == rows(alone)
    assert [r[2:] for r in rows(batched)[SEP]] == [r[2:] for r in rows(batched)[OCT]]
    assert len(rows(batched)[SEP]) == 237
    # one file per period, as the plan names it; the publish records what each was built from
    for root in (batched, alone):
        assert {label: [f.name for f in fs] for label, fs in files(root).items()} == {
            SEP: ["data_0.parquet"],
            OCT: ["data_0.parquet"],
        }
        recorded = load_published(root)["fingerprints"]["quality_by_country"]
        for label, [file] in files(root).items():
            assert {r[-1] for r in rows(root)[label]} == {recorded[label]["fingerprint"]}
            assert "period" not in pq.read_schema(file).names  # the folder's name, not a column
    # a file written alone is sorted by cluster_by (a batch does not keep the order)
    codes = pq.read_table(files(alone)[SEP][0], columns=["country_code"])["country_code"]
    assert codes.to_pylist() == sorted(codes.to_pylist(), key=lambda c: (c is None, c))

    # the batch's files are found again: nothing to do on the next build
    again = build(batched, tmp_path / "t3")
    assert "quality_by_country: 0 period(s) to process []" in again.output
    # a published file gone (not only its public name) is written again, whatever the
    # record says (here: that it was already gone when the build was published, as a
    # file deleted between the plan and the commit leaves it)
    record = load_published(batched)
    (batched / record["marts"]["quality_by_country"][SEP]).unlink()
    record["fingerprints"]["quality_by_country"][SEP]["stamp"] = None
    ArtifactPaths(batched).published_record.write_text(json.dumps(record))
    healed = build(batched, tmp_path / "t4")
    assert statements(healed).endswith(f"[{SEP!r}]")
    assert rows(batched) == rows(alone)


def test_a_period_without_rows_is_written_alone_and_published(tmp_path: Path) -> None:
    root = two_months(tmp_path / "artifacts")
    for name in DATASETS:  # September's entries hold no row: the partitioned write makes no file
        rewrite_entry(root, name, lambda t: t.slice(0, 0), period=SEP_2024)
    run = build(root, tmp_path / "t1")
    assert statements(run).endswith("in 1 statement(s)")
    assert [len(fs) for fs in files(root).values()] == [1, 1]
    assert pq.read_metadata(files(root)[SEP][0]).num_rows == 0
    assert query(root, "select count(*) from quality_by_country") == [(237,)]


def test_duplicates_in_a_batch_are_refused_naming_its_periods(tmp_path: Path) -> None:
    root = two_months(tmp_path / "artifacts")
    rewrite_entry(root, "downloads_by_country", lambda t: pa.concat_tables([t, t]), period=SEP_2024)
    run = build(root, tmp_path / "t1", check=False)
    assert run.returncode != 0
    assert (
        "quality_by_country fails: unique(period_start, period_end, country_code): " in run.output
    )
    assert f"(period {SEP} to {OCT})" in run.output
    assert not (root / "iqb.duckdb").exists()  # nothing published


def test_batches_hold_consecutive_periods_within_the_budget() -> None:
    sizes = [3, 3, 5, 20, 1, 1, 1]
    assert batches([{"bytes": b} for b in sizes], 10) == [[0, 1], [2], [3], [4, 5, 6]]
    assert batches([{"bytes": b} for b in sizes], 0) == [[i] for i in range(len(sizes))]
    many = batches([{"bytes": 0}] * (BATCH_MAX_PERIODS + 1), 10)
    assert [len(b) for b in many] == [BATCH_MAX_PERIODS, 1]
    assert batches([], 10) == []
