"""dbt build over M-Lab's real October 2024 country files, checked against the files.

One database is built once (the session fixture real_october) and every test
reads it. The cache holds only the two country datasets, as the real
fixtures do, so the ten other datasets have no file at all: the build must
still succeed.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from extract.datasets import PERCENTILES
from extract.sync.snapshot import materialise_published
from tests.conftest import REAL_CACHE, REPO
from tests.dbt.conftest import Built
from tests.dbt.helpers import (
    DUCKDB_CLI,
    IQB,
    DbtRun,
    dbt,
    env,
    query,
    shell,
)

pytestmark = pytest.mark.slow

OCT = (date(2024, 10, 1), date(2024, 11, 1))
REAL = REAL_CACHE / "v1/20241001T000000Z/20241101T000000Z"
OCT_KEY = "cache/v1/20241001T000000Z/20241101T000000Z"
# Big, small, fast and slow countries; UM has uploads only.
COUNTRIES = ["US", "DE", "BR", "IN", "ZA", "JP", "NG", "NR", "UM"]

# docs/iqb_score.md: use case -> requirement -> (weight, threshold),
# written out here independently of the dbt seeds.
IQB_CONFIG = {
    "web_browsing": {
        "download": (3, 10),
        "upload": (2, 10),
        "latency": (4, 100),
        "loss": (4, 0.01),
    },
    "video_streaming": {
        "download": (4, 25),
        "upload": (2, 10),
        "latency": (4, 100),
        "loss": (4, 0.01),
    },
    "audio_streaming": {
        "download": (4, 10),
        "upload": (1, 5),
        "latency": (3, 100),
        "loss": (4, 0.01),
    },
    "video_conferencing": {
        "download": (4, 25),
        "upload": (4, 25),
        "latency": (4, 50),
        "loss": (4, 0.005),
    },
    "online_backup": {
        "download": (4, 10),
        "upload": (4, 25),
        "latency": (2, 100),
        "loss": (4, 0.01),
    },
    "gaming": {"download": (4, 25), "upload": (4, 25), "latency": (5, 10), "loss": (4, 0.005)},
}


def iqb_reference(p95: dict[str, float]) -> tuple[dict[str, float], float]:
    """Upstream's algorithm (m-lab/iqb calculator), one place at a time, in Python."""
    use_cases = {}
    for use_case, reqs in IQB_CONFIG.items():
        total = weights = 0.0
        for metric, (weight, threshold) in reqs.items():
            value = p95[metric]
            passed = value > threshold if metric in ("download", "upload") else value < threshold
            total += weight * int(passed)
            weights += weight
        use_cases[use_case] = total / weights
    return use_cases, sum(use_cases.values()) / len(use_cases)


def real_rows(dataset: str) -> dict[str, dict]:
    table = pq.read_table(REAL / dataset / "data.parquet")
    return {r["country_code"]: r for r in table.to_pylist()}


@pytest.fixture
def built(real_october: Built) -> tuple[Path, Path, DbtRun]:
    """(artifacts root, dbt target dir, the build's run): see tests/dbt/conftest.py."""
    return real_october.artifacts, real_october.target, real_october.run


def test_the_build_passes_every_model_and_data_test(built: tuple[Path, Path, DbtRun]) -> None:
    _, _, run = built
    statuses = run.statuses()
    assert statuses, run.output
    failed = {
        k: v
        for k, v in statuses.items()
        if v not in ("success", "pass") and not k.startswith("exposure.")
    }
    assert not failed, run.output
    kinds = {k.split(".")[0] for k in statuses}
    assert {"model", "seed", "test"} <= kinds
    assert "unit_test" not in kinds  # they run on request (test_write_audit_publish.py)


def test_real_data_is_not_synthetic(built: tuple[Path, Path, DbtRun]) -> None:
    root, _, run = built
    # hand-copied upstream entries: nothing shows their bytes belong under their key
    assert "WARNING 2 cache entries in upstream's format" in run.output
    assert f"{OCT_KEY}/downloads_by_country, {OCT_KEY}/uploads_by_country." in run.output
    assert query(root, "select distinct is_synthetic, source_kind from quality_by_country") == [
        (False, "upstream")
    ]  # M-Lab's published files: upstream's stats.json


def test_datasets_without_files_give_empty_marts_not_errors(
    built: tuple[Path, Path, DbtRun],
) -> None:
    root, _, run = built
    assert "no readable entry of downloads_by_country_city_asn" in run.output
    for level in ("country_asn", "subdivision1", "subdivision1_asn", "city", "city_asn"):
        assert query(root, f"select count(*) from quality_by_{level}") == [(0,)]
        assert query(root, f"select count(*) from iqb_scores_by_{level}") == [(0,)]
    assert query(root, "select count(*) from quality_by_country")[0][0] > 200


def test_every_place_of_either_side_is_kept(built: tuple[Path, Path, DbtRun]) -> None:
    root, _, _ = built
    downloads, uploads = real_rows("downloads_by_country"), real_rows("uploads_by_country")
    rows = query(
        root,
        "select country_code, download_sample_count, upload_sample_count from quality_by_country",
    )
    assert {r[0] for r in rows} == set(downloads) | set(uploads)
    assert len(rows) == len(set(downloads) | set(uploads))
    one_sided = {r[0]: r[1:] for r in rows if r[1] is None or r[2] is None}
    assert "UM" in one_sided and one_sided["UM"][0] is None  # uploads only, as in the real data
    for code, (down, up) in one_sided.items():
        assert (down is None) == (code not in downloads)
        assert (up is None) == (code not in uploads)


@pytest.mark.parametrize("code", COUNTRIES)
def test_mart_values_are_the_source_files_values(
    built: tuple[Path, Path, DbtRun], code: str
) -> None:
    root, _, _ = built
    downloads, uploads = real_rows("downloads_by_country"), real_rows("uploads_by_country")
    columns = [f"{m}_p{p}" for m in ("download", "latency", "loss") for p in PERCENTILES] + [
        f"upload_p{p}" for p in PERCENTILES
    ]
    [row] = query(
        root,
        f"select period_start, period_end, download_sample_count, "
        f"upload_sample_count, {', '.join(columns)} "
        f"from quality_by_country where country_code = ?",
        [code],
    )
    assert (row[0], row[1]) == OCT
    mart = dict(
        zip(["download_sample_count", "upload_sample_count", *columns], row[2:], strict=True)
    )
    down, up = downloads.get(code), uploads.get(code)
    assert mart["download_sample_count"] == (down["sample_count"] if down else None)
    assert mart["upload_sample_count"] == (up["sample_count"] if up else None)
    for column in columns:
        side = up if column.startswith("upload") else down
        assert mart[column] == (side[column] if side else None), column  # copied, not recomputed


def test_country_names_come_from_the_iso_seed(built: tuple[Path, Path, DbtRun]) -> None:
    root, _, _ = built
    names = dict(query(root, "select country_code, country_name from quality_by_country"))
    assert names["DE"] == "Germany"
    assert names["BO"] == "Bolivia"  # the common name, not "Bolivia, Plurinational State of"
    assert names["NA"] == "Namibia"  # not read as NULL by the seed loader
    assert names["XK"] == "Kosovo"  # user-assigned, not ISO 3166-1, but in M-Lab's data


def test_min_samples_flag(built: tuple[Path, Path, DbtRun]) -> None:
    root, _, _ = built
    rows = query(
        root,
        "select download_sample_count, upload_sample_count, meets_min_samples, "
        "min_sample_count from quality_by_country",
    )
    for down, up, meets, threshold in rows:
        assert threshold == 100
        assert meets == (down is not None and up is not None and down >= 100 and up >= 100)
    assert any(not r[2] for r in rows) and any(r[2] for r in rows)


def test_iqb_scores_equal_an_independent_python_computation(
    built: tuple[Path, Path, DbtRun],
) -> None:
    root, _, _ = built
    downloads, uploads = real_rows("downloads_by_country"), real_rows("uploads_by_country")
    use_cases = list(IQB_CONFIG)
    rows = query(
        root,
        f"select country_code, meets_min_samples, "
        f"{', '.join(u + '_score' for u in use_cases)}, iqb_score "
        f"from iqb_scores_by_country",
    )
    assert len(rows) == len(set(downloads) | set(uploads))
    checked = 0
    for code, meets, *scores in rows:
        if not meets:
            assert scores == [None] * 7, code  # NULL, not a wrong number
            continue
        down, up = downloads[code], uploads[code]
        expected_uc, expected_iqb = iqb_reference(
            {
                "download": down["download_p95"],
                "upload": up["upload_p95"],
                "latency": down["latency_p95"],
                "loss": down["loss_p95"],
            }
        )
        for use_case, got in zip(use_cases, scores[:-1], strict=True):
            assert math.isclose(got, expected_uc[use_case], rel_tol=1e-12), (code, use_case)
        assert math.isclose(scores[-1], expected_iqb, rel_tol=1e-12), code
        checked += 1
    assert checked > 150
    # a spread of scores, not a constant
    assert len({round(s[-1], 6) for _, m, *s in rows if m}) > 5


def test_exports_are_the_marts_as_parquet(built: tuple[Path, Path, DbtRun]) -> None:
    root, _, _ = built
    folder = root / "marts" / "quality_by_country"
    files = sorted(folder.glob("*/*.parquet"))
    assert [f.parent.name for f in files] == ["period=2024-10-01_2024-11-01"]
    exported = pq.read_table(files[0])
    assert exported.num_rows == query(root, "select count(*) from quality_by_country")[0][0]
    assert exported.schema.field("period_start").type == "date32[day]"
    by_code = {r["country_code"]: r for r in exported.to_pylist()}
    [(p95,)] = query(root, "select download_p95 from quality_by_country where country_code = 'DE'")
    assert by_code["DE"]["download_p95"] == p95
    # the folder reads back as one table (Hive-style partitions) with pyarrow and DuckDB
    assert pq.read_table(folder).num_rows == exported.num_rows
    [(read_back,)] = duckdb.sql(
        f"select count(*) from read_parquet('{folder}/*/*.parquet')"
    ).fetchall()
    assert read_back == exported.num_rows
    for level in ("country_asn", "subdivision1", "subdivision1_asn", "city", "city_asn"):
        assert not list((root / "marts").glob(f"quality_by_{level}/*/*"))  # no period, no file


def test_duckdb_shell_opens_the_file_dbt_wrote_read_only(
    built: tuple[Path, Path, DbtRun], tmp_path: Path
) -> None:
    root, _, _ = built
    version = subprocess.run([str(DUCKDB_CLI), "-version"], capture_output=True, text=True)
    assert version.stdout.split()[0].lstrip("v") == duckdb.__version__
    db = root / "iqb.duckdb"
    ok = shell(
        db,
        "select count(*) from quality_by_country;\n"
        "select database_name, path from duckdb_databases() where not internal;\n",
        "-csv",
        "-noheader",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    count, attached = ok.stdout.strip().splitlines()
    assert int(count) == query(root, "select count(*) from quality_by_country")[0][0]
    assert attached == f"iqb,{db}"
    refused = shell(db, "create table scratch as select 1;\n", "-bail", cwd=tmp_path)
    assert refused.returncode != 0
    assert "read-only" in (refused.stdout + refused.stderr).lower()


# What users query in `main`, one of each kind: a quality mart (a view over
# Parquet files), a score view and a seed (a table).
DOCUMENTED = {
    "quality_by_country": "model",
    "iqb_scores_by_country": "model",
    "iso3166_countries": "seed",
}


def comments(database: Path) -> dict[tuple[str, str | None], str | None]:
    """(relation, column or None for the relation) -> its comment, in schema main."""
    names = list(DOCUMENTED)
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name, comment from duckdb_columns() "
            "where schema_name = 'main' and table_name in ? union all "
            "select view_name, null, comment from duckdb_views() "
            "where schema_name = 'main' and view_name in ? union all "
            "select table_name, null, comment from duckdb_tables() "
            "where schema_name = 'main' and table_name in ?",
            [names] * 3,
        ).fetchall()
    return {(relation, column): comment for relation, column, comment in rows}


def test_what_users_query_and_its_snapshot_carry_the_yaml_descriptions(
    built: tuple[Path, Path, DbtRun], tmp_path: Path
) -> None:
    root, target, _ = built
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    want: dict[tuple[str, str | None], str | None] = {}
    for name, kind in DOCUMENTED.items():
        node = nodes[f"{kind}.iqb.{name}"]
        want[(name, None)] = node["description"] or None
        columns = query(
            root,
            "select column_name from duckdb_columns() "
            "where schema_name = 'main' and table_name = ?",
            [name],
        )
        # exactly the YAML's columns (the mart's folders period=... add none)
        assert sorted(c for (c,) in columns) == sorted(node["columns"]), name
        for column in node["columns"].values():
            want[(name, column["name"])] = column["description"] or None
    live = comments(root / "iqb.duckdb")
    assert live == want
    undocumented = query(
        root,
        "select table_name, column_name from duckdb_columns() where database_name = 'iqb' "
        "and schema_name = 'main' and coalesce(comment, '') = ''",
    )
    assert not undocumented  # every column people query says what it is
    assert want[("quality_by_country", "download_p95")]  # documented, so not a vacuous match
    assert want[("quality_by_country", None)] and want[("iso3166_countries", None)]

    # the read-only snapshot that a push publishes: every relation a table, same comments
    snapshot = tmp_path / "elsewhere" / "iqb_snapshot.duckdb"
    snapshot.parent.mkdir()
    materialise_published(root / "iqb.duckdb", snapshot)
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.execute("select count(*) from duckdb_views() where not internal").fetchone() == (
            0,
        )
        assert con.execute("select count(*) from quality_by_country").fetchone() == tuple(
            query(root, "select count(*) from quality_by_country")[0]
        )
    assert comments(snapshot) == live


def test_iqb_report(built: tuple[Path, Path, DbtRun]) -> None:
    root, _, _ = built
    proc = subprocess.run(
        [str(IQB), "report"],
        env=env(root),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    n = query(root, "select count(*) from quality_by_country")[0][0]
    assert re.search(rf"quality_by_country\s+│\s+{n}\s+│\s+1\s+│\s+2024-10-01", out), out
    assert re.search(r"quality_by_city_asn\s+│\s+0\s+│\s+0", out), out
    assert "best 5 of" in out and "worst 5 of" in out and "2024-10-01..2024-11-01" in out
    best = query(
        root,
        "select country_code from iqb_scores_by_country where iqb_score is not null "
        "order by iqb_score desc, download_p95 desc, country_code limit 5",
    )
    worst = query(
        root,
        "select country_code from iqb_scores_by_country where iqb_score is not null"
        " order by iqb_score, download_p95, country_code limit 5",
    )
    lines = out.splitlines()
    best_at = next(i for i, line in enumerate(lines) if "best 5 of" in line)
    worst_at = next(i for i, line in enumerate(lines) if "worst 5 of" in line)

    def codes(block: list[str]) -> list[str]:
        return [m[1] for line in block if (m := re.match(r"│ ([A-Z]{2}) ", line))]

    best_codes, worst_codes = codes(lines[best_at:worst_at]), codes(lines[worst_at:])
    assert best_codes == [c for (c,) in best]
    assert worst_codes == [c for (c,) in worst]
    assert f"-readonly {root / 'iqb.duckdb'}" in out


def test_dbt_docs_generate(built: tuple[Path, Path, DbtRun]) -> None:
    root, target, _ = built
    run = dbt("docs", "generate", artifacts=root, target=target)
    assert run.returncode == 0
    catalog = (target / "catalog.json").read_text()
    assert "model.iqb.quality_by_country" in catalog and "iqb_score" in catalog
    manifest = (target / "manifest.json").read_text()
    assert "Percentiles cannot be merged across rows" in manifest
