"""extract.results.api: DataFrames of the marts and score views, read-only, from any folder."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from extract.results import api
from tests.conftest import REPO
from tests.dbt.helpers import IQB, copy_real_october, dbt, env, shell
from tests.dbt.test_write_audit_publish import rewrite_entry
from tests.disk import fill, tmpfs

pytestmark = pytest.mark.slow


def q(root: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / "iqb.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_slices_by_level_place_and_period(demo_db: Path) -> None:
    world = api.scores("country", period="latest", artifacts=demo_db)
    assert (
        len(world)
        == q(
            demo_db, "select count(*) from iqb_scores_by_country where period_start = '2024-10-01'"
        )[0][0]
    )
    assert set(world.period_start.dt.date) == {date(2024, 10, 1)}
    assert (
        api.scores("country", period="2024-09", artifacts=demo_db).period_start.dt.date
        == date(2024, 9, 1)
    ).all()
    za = api.trend("za", artifacts=demo_db)
    assert list(za.period_start.dt.date) == [date(2024, 9, 1), date(2024, 10, 1)]
    expected = q(
        demo_db,
        "select q.download_p50, s.iqb_score from quality_by_country q join "
        "iqb_scores_by_country s using (period_start, period_end, country_code)"
        " where country_code = 'ZA' order by period_start",
    )
    assert list(zip(za.download_p50, za.iqb_score, strict=True)) == expected
    sub = q(
        demo_db,
        "select subdivision1_name, count(*) from quality_by_city "
        "where country_code = 'ZA' group by all order by 2 desc limit 1",
    )[0]
    cities = api.quality("city", country="ZA", place=sub[0].upper(), artifacts=demo_db)
    assert len(cities) == sub[1] and set(cities.subdivision1_name) == {sub[0]}
    asn = q(
        demo_db,
        "select asn, count(*) from quality_by_city_asn where country_code = 'ZA' "
        "group by all order by 2 desc limit 1",
    )[0]
    nets = api.scores("city_asn", country="ZA", asn=asn[0], artifacts=demo_db)
    assert len(nets) == asn[1] and set(nets.asn) == {asn[0]}
    assert "score_percentile" in nets.columns
    assert api.periods(artifacts=demo_db).countries_scored.min() > 200


def test_finds_the_database_from_a_subfolder(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IQB_ARTIFACTS", raising=False)
    sub = demo_db / "sub" / "deeper"  # any folder below the one holding artifacts/
    sub.mkdir(parents=True, exist_ok=True)
    workspace = demo_db.parent
    assert demo_db.name == "artifacts"
    monkeypatch.chdir(workspace / "artifacts" / "sub" / "deeper")
    assert api.artifacts_root() == demo_db
    # `iqb` reads ./artifacts, and says where the API's database is
    proc = subprocess.run(
        [str(IQB), "report"], cwd=Path.cwd(), env=env(None), capture_output=True, text=True
    )
    assert proc.returncode == 1 and "no database at" in proc.stderr
    assert f"there is one under {demo_db}: pass --artifacts {demo_db}" in proc.stderr
    monkeypatch.setenv("IQB_ARTIFACTS", "/nonexistent/elsewhere")
    assert api.artifacts_root() == Path("/nonexistent/elsewhere")


def test_an_artifacts_folder_without_database_is_an_error_not_the_checkouts(
    demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workspace that only pulled a cache, or whose first build failed, has
    artifacts/ but no database: the API must say so, not answer from the
    checkout's (here the demo's synthetic) database."""
    monkeypatch.delenv("IQB_ARTIFACTS", raising=False)
    (tmp_path / "artifacts" / "cache").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert api.artifacts_root() == tmp_path / "artifacts"
    with pytest.raises(api.ApiError, match=f"no database at {tmp_path}/artifacts/iqb.duckdb"):
        api.scores("country", period="latest")


def test_reads_read_only_beside_another_reader(demo_db: Path) -> None:
    before = (demo_db / "iqb.duckdb").stat().st_mtime_ns
    with duckdb.connect(str(demo_db / "iqb.duckdb"), read_only=True):
        assert len(api.quality("subdivision1", country="ZA", artifacts=demo_db)) > 0
    with api.connect(demo_db) as con, pytest.raises(duckdb.Error, match="read-only"):
        con.execute("create table t (x int)")
    assert (demo_db / "iqb.duckdb").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: api.scores("planet", artifacts=r), "unknown level 'planet'"),
        (lambda r: api.scores(period="October", artifacts=r), "period 'October'"),
        (lambda r: api.scores(period="2024-13", artifacts=r), "is not a date"),
        (lambda r: api.quality("city", asn=1, artifacts=r), "has no networks"),
        (lambda r: api.quality("country", place="X", artifacts=r), "no places below"),
        (lambda r: api.quality("country_asn", asn="ASX", artifacts=r), "not an AS number"),
        # a filter that matches no row at all is named, never an empty DataFrame
        (
            lambda r: api.scores(country="UK", artifacts=r),
            r"no row of iqb_scores_by_country has country 'UK' \(an ISO 3166 alpha-2",
        ),
        (lambda r: api.trend("ZAF", artifacts=r), "has country 'ZAF'"),
        (
            lambda r: api.quality(period="2023-01", artifacts=r),
            "has period '2023-01'; its periods: 2024-09-01..2024-10-01, 2024-10-01..2024-11-01$",
        ),
        (lambda r: api.quality("city", place="Atlantis", artifacts=r), "has place 'Atlantis'"),
        (lambda r: api.scores("country_asn", asn=4_000_000_000, artifacts=r), "asn 4000000000"),
    ],
)
def test_bad_arguments_say_what_to_do(
    demo_db: Path, call: Callable[[Path], object], message: str
) -> None:
    with pytest.raises(api.ApiError, match=message):
        call(demo_db)


def test_an_asn_as_upstream_writes_it_and_a_true_empty_answer(demo_db: Path) -> None:
    asn = q(demo_db, "select any_value(asn) from quality_by_country_asn")[0][0]
    assert api.quality("country_asn", asn=f"AS{asn}", artifacts=demo_db).asn.unique() == [asn]
    # each filter matches alone, together nothing: that answer is the empty frame
    city, elsewhere = q(
        demo_db,
        "select a.city, b.country_code from quality_by_city a join quality_by_city b "
        "on a.country_code <> b.country_code where a.city not in "
        "(select city from quality_by_city where country_code = b.country_code) limit 1",
    )[0]
    assert api.quality("city", country=elsewhere, place=city, artifacts=demo_db).empty


def test_synthetic_rows_are_said_in_a_warning_and_in_periods(demo_db: Path, real_db: Path) -> None:
    with pytest.warns(api.SyntheticDataWarning, match=r"^\d+ of \d+ rows of iqb_scores_by_country"):
        api.scores("country", period="latest", artifacts=demo_db)
    assert api.periods(artifacts=demo_db).is_synthetic.all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # real M-Lab rows: no warning at all
        assert len(api.scores("country", artifacts=real_db)) > 100
    assert not api.periods(artifacts=real_db).is_synthetic.any()


def test_missing_database_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(api.ApiError, match=r"no database at .*dbt build"):
        api.scores(artifacts=tmp_path)


def upstream_score(config: dict, data: dict[str, dict[str, float]]) -> tuple[dict, float]:
    """m-lab/iqb's calculator (calculator.py), transcribed: per requirement the
    weighted mean over the datasets present in the data, per use case the weighted
    mean of its requirements, the IQB score the weighted mean of the use cases."""
    passes_above = {"download_throughput_mbps": True, "upload_throughput_mbps": True}
    use_cases, uc_scores, uc_weights = {}, [], []
    for uc_name, uc in config["use cases"].items():
        nr_scores, nr_weights = [], []
        for nr_name, nr in uc["network requirements"].items():
            ds_scores, ds_weights = [], []
            for ds_name, ds in nr["datasets"].items():
                if ds_name in data and ds["w"] > 0:
                    value = data[ds_name][nr_name]
                    threshold = nr["threshold min"]
                    ok = value > threshold if passes_above.get(nr_name) else value < threshold
                    ds_scores.append((1 if ok else 0) * ds["w"])
                    ds_weights.append(ds["w"])
            nr_scores.append(sum(ds_scores) / sum(ds_weights) * nr["w"])
            nr_weights.append(nr["w"])
        use_cases[uc_name] = sum(nr_scores) / sum(nr_weights)
        uc_scores.append(use_cases[uc_name] * uc["w"])
        uc_weights.append(uc["w"])
    return use_cases, sum(uc_scores) / sum(uc_weights)


def changed_config(config: dict) -> dict:
    """Other thresholds and weights, fractional ones included (the order of the sums
    then matters to the last bit)."""
    changed = copy.deepcopy(config)
    gaming = changed["use cases"]["gaming"]
    gaming["network requirements"]["latency_ms"]["threshold min"] = 50
    gaming["network requirements"]["packet_loss"]["w"] = 0.3
    changed["use cases"]["video streaming"]["w"] = 2.5
    changed["use cases"]["online backup"]["network requirements"]["upload_throughput_mbps"][
        "threshold min"
    ] = 5.5
    return changed


@pytest.mark.parametrize("percentile", [50, 95])
def test_scores_with_the_exported_config_or_a_changed_one_as_upstream_would(
    real_db: Path, tmp_path: Path, percentile: int
) -> None:
    """`iqb config export` writes the database's own config in upstream's shape; scored
    with it the real October 2024 data give the database's scores bit for bit, at the
    build's percentile and at another; a changed config gives upstream's numbers."""
    exported = tmp_path / "iqb_config.yaml"
    proc = subprocess.run(
        [str(IQB), "config", "export", "--output", str(exported), "--artifacts", str(real_db)],
        env=env(real_db),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(exported.read_text())
    assert config == api.config(artifacts=real_db)
    assert config["use cases"]["gaming"]["network requirements"]["latency_ms"] == {
        "w": 5,
        "threshold min": 10,
        "datasets": {"m-lab": {"w": 1}, "cloudflare": {"w": 0}, "ookla": {"w": 0}},
    }
    database = api.scores("country", percentile=percentile, artifacts=real_db)
    assert (database.score_percentile == percentile).all()
    ours = api.scores("country", percentile=percentile, config=exported, artifacts=real_db)
    pd.testing.assert_frame_equal(ours, database, check_exact=True, check_dtype=False)
    if percentile == 95:  # the build's percentile: the score view itself
        pd.testing.assert_frame_equal(
            api.scores("country", config=exported, artifacts=real_db),
            api.scores("country", artifacts=real_db),
            check_exact=True,
            check_dtype=False,
        )
    changed = changed_config(config)
    json_file = tmp_path / "changed.json"
    json_file.write_text(json.dumps(changed))
    what_if = api.scores("country", percentile=percentile, config=json_file, artifacts=real_db)
    quality = api.quality("country", artifacts=real_db).set_index("country_code")
    checked = differ = 0
    # records, not itertuples: pandas types a tuple's fields as any scalar at all
    for row in what_if.to_dict("records"):
        q = quality.loc[row["country_code"]]
        if row["score_status"] != "scored":
            assert math.isnan(row["iqb_score"])
            continue
        data = {
            "m-lab": {
                "download_throughput_mbps": q[f"download_p{percentile}"],
                "upload_throughput_mbps": q[f"upload_p{percentile}"],
                "latency_ms": q[f"latency_p{percentile}"],
                "packet_loss": q[f"loss_p{percentile}"],
            }
        }
        use_cases, expected = upstream_score(changed, data)
        assert row["iqb_score"] == expected, row["country_code"]  # bit for bit
        assert row["gaming_score"] == use_cases["gaming"]
        assert row["online_backup_score"] == use_cases["online backup"]
        _, default = upstream_score(config, data)
        differ += default != expected
        checked += 1
    assert checked > 200 and differ > 10


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["use cases"]["gaming"]["network requirements"]["latency_ms"].pop(
                "threshold min"
            ),
            "use case 'gaming', requirement 'latency_ms': no 'threshold min'",
        ),
        (
            lambda c: c["use cases"]["web browsing"]["network requirements"]["packet_loss"].update(
                w="four"
            ),
            "use case 'web browsing', requirement 'packet_loss': 'w' must be a number",
        ),
        (
            lambda c: c["use cases"]["audio streaming"]["network requirements"].update(
                jitter_ms={"w": 1, "threshold min": 30, "datasets": {"m-lab": {"w": 1}}}
            ),
            "use case 'audio streaming', requirement 'jitter_ms': not one of",
        ),
        (
            lambda c: c["use cases"]["video conferencing"]["network requirements"][
                "upload_throughput_mbps"
            ]["datasets"]["m-lab"].update(w=0),
            "use case 'video conferencing', requirement 'upload_throughput_mbps': dataset "
            "'m-lab' has weight 0",
        ),
        (
            lambda c: c["use cases"]["online backup"].update(w=-1),
            "use case 'online backup': weight 'w' is negative",
        ),
        (lambda c: c.pop("use cases"), "config has no 'use cases'"),
    ],
)
def test_a_malformed_config_names_the_use_case_and_requirement(
    real_db: Path, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    config = api.config(artifacts=real_db)
    edit(config)
    with pytest.raises(api.ApiError, match=re.escape(message)):
        api.scores("country", config=config, artifacts=real_db)


def test_a_config_export_on_a_full_disk_leaves_nothing(real_db: Path, tmp_path: Path) -> None:
    """One line naming the file, exit 1, and no partial config (or temp file) where the
    researcher would look."""
    with tmpfs(tmp_path / "disk", "1m") as disk:
        fill(disk)
        output = disk / "iqb_config.yaml"
        proc = subprocess.run(
            [str(IQB), "config", "export", "--output", str(output), "--artifacts", str(real_db)],
            env=env(real_db),
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 1, proc.stderr
        assert "No space left" in proc.stderr and str(output) in proc.stderr
        assert "Traceback" not in proc.stderr
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_percentile_the_marts_lack_is_refused(real_db: Path, tmp_path: Path) -> None:
    for bad in (95.5, 42, "50"):
        with pytest.raises(api.ApiError, match=r"percentile .*: use one of 1, 5, 10, 25"):
            api.scores("country", percentile=bad, artifacts=real_db)  # type: ignore[arg-type]  # wrong types on purpose
    broken = tmp_path / "broken.yaml"
    broken.write_text("use cases: [unclosed\n")
    with pytest.raises(api.ApiError, match=f"config {broken} is not valid yaml"):
        api.scores("country", config=broken, artifacts=real_db)


@pytest.fixture(scope="module")
def odd_codes_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real October 2024 country files plus rows (ZA's numbers) under codes that are
    not countries: '', 'Q1', 'USA', 'us'."""
    root = tmp_path_factory.mktemp("odd_codes") / "artifacts"
    copy_real_october(root)
    for dataset in ("downloads_by_country", "uploads_by_country"):

        def add(t: pa.Table) -> pa.Table:
            za = t.filter(pc.equal(t["country_code"], "ZA"))
            return pa.concat_tables(
                [t]
                + [
                    za.set_column(0, "country_code", pa.array([code], pa.string()))
                    for code in ODD_CODES
                ]
            )

        rewrite_entry(root, dataset, add)
    dbt("build", artifacts=root, target=root.parent / "target")
    return root


ODD_CODES = ("", "Q1", "USA", "us")


def test_codes_that_are_not_countries_are_never_counted_listed_or_ranked(
    odd_codes_db: Path,
) -> None:
    [(known, flagged)] = q(
        odd_codes_db,
        "select count(*) filter (where is_known_country), "
        "count(*) filter (where not is_known_country) from iqb_scores_by_country",
    )
    assert flagged == len(ODD_CODES)  # kept and flagged in the database
    [period] = api.periods(artifacts=odd_codes_db).to_dict("records")
    assert period["countries"] == known and period["other_codes"] == len(ODD_CODES)
    for frame in (
        api.scores("country", artifacts=odd_codes_db),
        api.scores("country", percentile=50, artifacts=odd_codes_db),
        api.scores("country", config=api.config(artifacts=odd_codes_db), artifacts=odd_codes_db),
        api.quality("country", artifacts=odd_codes_db),
    ):
        assert len(frame) == known and frame.is_known_country.all()
        assert not set(ODD_CODES) & set(frame.country_code)
    with pytest.raises(api.ApiError, match=r"country 'Q1' is not a country.*unknown_codes=True"):
        api.trend("Q1", artifacts=odd_codes_db)
    kept = api.scores("country", unknown_codes=True, artifacts=odd_codes_db)
    assert set(ODD_CODES) <= set(kept.country_code)
    assert set(kept[~kept.is_known_country].score_status) == {"unknown_country"}
    # the CLI ranks and counts countries only
    report = subprocess.run(
        [str(IQB), "report", "--top", "300", "--artifacts", str(odd_codes_db)],
        env=env(odd_codes_db),
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr
    [(scored,)] = q(odd_codes_db, "select count(iqb_score) from iqb_scores_by_country")
    assert f"of {scored} countries" in report.stdout
    assert not [c for c in ("Q1", "USA", "us") if re.search(rf"│ {c}\b", report.stdout)]
    assert "4 unknown country" in report.stdout


def test_an_unknown_place_lists_the_nearest_names(demo_db: Path, real_db: Path) -> None:
    with pytest.raises(api.ApiError) as err:
        api.scores("city", country="BR", place="Synthetic Cty BR-1-1", artifacts=demo_db)
    assert "no row of iqb_scores_by_city has place 'Synthetic Cty BR-1-1'" in str(err.value)
    assert "nearest names: 'Synthetic City BR-1-1'" in str(err.value)
    with pytest.raises(api.ApiError, match="nearest names: 'Synthetic Region 1 of ZA'"):
        api.quality(
            "subdivision1", country="ZA", place="Synthetic Regoin 1 of ZA", artifacts=demo_db
        )
    # case and accents do not matter
    exact = api.scores("city", country="BR", place="Synthetic City BR-1-1", artifacts=demo_db)
    folded = api.scores("city", country="BR", place="SYNTHÉTIC CITY br-1-1", artifacts=demo_db)
    pd.testing.assert_frame_equal(exact, folded)
    assert len(exact) == 2  # both months of the demo


def code_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


EXAMPLE_PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=lambda p: p.name)
def test_every_api_and_sql_example_runs_as_written_on_the_demo_database(
    demo_db: Path, page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python blocks of a page run in one namespace (as a reader pastes them in
    order), the SQL blocks in the duckdb shell, on the `make demo` database."""
    monkeypatch.setenv("IQB_ARTIFACTS", str(demo_db))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", api.SyntheticDataWarning)
        for block in code_blocks(page, "python"):
            exec(compile(block, f"{page.name} example", "exec"), namespace)
    for block in code_blocks(page, "sql"):
        proc = shell(demo_db / "iqb.duckdb", block, "-csv", "-bail", cwd=tmp_path)
        assert proc.returncode == 0, (page.name, block, proc.stderr)
        assert len(proc.stdout.strip().splitlines()) >= 2, (block, proc.stdout)


def test_the_examples_are_found() -> None:
    readme = REPO / "README.md"
    assert len(code_blocks(readme, "python")) >= 2 and len(code_blocks(readme, "sql")) >= 5
    assert code_blocks(REPO / "docs/iqb_score.md", "sql")
