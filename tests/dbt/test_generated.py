"""Fast checks of the dbt project's files and of `iqb report` without a database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pycountry
import yaml
from typer.testing import CliRunner

from extract.cli import app
from extract.datasets import DATASETS
from tests.conftest import REPO
from tests.dbt.helpers import PROJECT, repo_copy


def test_generated_files_match_their_contracts() -> None:
    """__sources.yml, stg_*, the ISO seed and the marts' columns are what generate.py
    derives today."""
    proc = subprocess.run(
        [sys.executable, str(PROJECT / "scripts" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"stale generated files, run generate.py:\n{proc.stdout}"


def test_every_dataset_is_a_source_with_its_schema() -> None:
    doc = yaml.safe_load((PROJECT / "models/staging/__sources.yml").read_text())
    [source] = doc["sources"]
    tables = {t["name"]: t for t in source["tables"]}
    assert set(tables) == {d.name for d in DATASETS}
    for ds in DATASETS:
        declared = [c["name"] for c in tables[ds.name]["columns"]]
        assert declared == [*ds.schema.names, "filename"]
        assert (PROJECT / f"models/staging/stg_{ds.name}.sql").is_file()


def test_country_seed_is_pycountry() -> None:
    lines = (PROJECT / "seeds/iso3166_countries.csv").read_text().splitlines()
    assert len(lines) == 1 + len(pycountry.countries) + 1  # + XK, user-assigned
    assert "XK,XKX,,Kosovo,," in lines
    assert "NA,NAM,516,Namibia,Namibia,Republic of Namibia" in lines


def test_iqb_report_without_a_database_says_to_run_dbt_build(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--artifacts", str(tmp_path)])
    assert result.exit_code == 1
    assert "no database at" in result.output and "dbt build" in result.output


def test_iqb_report_on_a_database_without_marts_says_to_run_dbt_build(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "iqb.duckdb")).close()
    result = CliRunner().invoke(app, ["report", "--artifacts", str(tmp_path)])
    assert result.exit_code == 1
    assert "lacks quality_by_country" in result.output and "dbt build" in result.output


def test_exposures_name_every_mart_and_where_it_goes() -> None:
    doc = yaml.safe_load((PROJECT / "models/exposures.yml").read_text())
    exposures = {e["name"]: e for e in doc["exposures"]}
    assert set(exposures) == {"parquet_exports", "html_report", "bucket"}
    marts = {p.stem for p in (PROJECT / "models/marts").glob("*/*.sql")}
    assert {r.split("'")[1] for r in exposures["bucket"]["depends_on"]} == marts
    assert all(e["owner"]["name"] and e["description"] for e in exposures.values())


def test_staging_models_are_one_macro_call_each() -> None:
    for ds in DATASETS:
        lines = [
            line
            for line in (PROJECT / f"models/staging/stg_{ds.name}.sql").read_text().splitlines()
            if not line.startswith("--")
        ]
        assert lines == [f"{{{{ stage_dataset('{ds.name}') }}}}"], ds.name


def test_the_use_cases_have_one_home_the_seed() -> None:
    """The macro listing them is generated from seeds/iqb_use_cases.csv (checked above);
    the report reads them from the database, so no other file lists them."""
    seed = (PROJECT / "seeds/iqb_use_cases.csv").read_text().splitlines()[1:]
    names = [line.split(",")[0] for line in seed]
    macro = (PROJECT / "macros/use_cases.sql").read_text()
    assert str(names).replace('"', "'") in " ".join(macro.split())
    tracked = subprocess.run(
        ["git", "ls-files", "extract", "bench", "dbt_project/macros"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()  # the repo's files, not build output (bench/work, target/)
    copies = [
        name
        for name in tracked
        if Path(name).suffix in (".py", ".js", ".sql", ".html")
        and Path(name).name != "use_cases.sql"
        and "video_conferencing" in (REPO / name).read_text()
    ]
    assert not copies, copies


def generate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(project / "scripts/generate.py"), *args],
        capture_output=True,
        text=True,
    )


def test_a_hand_edited_contract_column_is_drift_that_generate_repairs(tmp_path: Path) -> None:
    """The columns of the marts and score views are generated: an edit by hand is
    reported by --check and undone by generate.py, the prose and tests kept."""
    project = repo_copy(tmp_path) / "dbt_project"
    mart = project / "models/marts/quality/quality_by_country.yml"
    original = mart.read_text()
    mart.write_text(original.replace("\n      - name: loss_p99\n", "\n      - name: loss_p100\n"))

    check = generate(project, "--check")
    assert check.returncode == 1
    assert check.stdout == "stale: dbt_project/models/marts/quality/quality_by_country.yml\n"
    assert generate(project).returncode == 0
    assert mart.read_text() == original


def test_a_model_yaml_without_its_markers_is_a_readable_error(tmp_path: Path) -> None:
    project = repo_copy(tmp_path) / "dbt_project"
    view = project / "models/marts/scores/iqb_scores_by_city.yml"
    view.write_text(view.read_text().replace("    # END generated columns\n", ""))

    proc = generate(project)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "generate.py: dbt_project/models/marts/scores/iqb_scores_by_city.yml needs exactly one "
        "line starting with '# BEGIN generated columns' followed by one line "
        "'# END generated columns'"
    ), proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_use_case_that_cannot_be_a_column_is_refused(tmp_path: Path) -> None:
    project = repo_copy(tmp_path) / "dbt_project"
    with open(project / "seeds/iqb_use_cases.csv", "a") as fh:
        fh.write("Cloud Gaming,1\n")

    proc = generate(project)
    assert proc.returncode == 2
    assert proc.stderr == (
        "generate.py: dbt_project/seeds/iqb_use_cases.csv: use case 'Cloud Gaming' is not a "
        "lower-case name of letters, digits and underscores\n"
    )


def test_the_mart_yamls_list_their_columns_only_in_the_generated_block() -> None:
    """Outside the block generate.py writes, no model YAML of models/marts/ names a
    percentile or use-case score column: those lists have one home each."""
    use_cases = [
        line.split(",")[0]
        for line in (PROJECT / "seeds/iqb_use_cases.csv").read_text().splitlines()[1:]
    ]
    for path in sorted((PROJECT / "models/marts").glob("*/*_by_*.yml")):
        text = path.read_text()
        if "all_percentiles" in path.name:
            assert text.startswith("# Generated by dbt_project/scripts/generate.py"), path
            continue
        begin = text.index("    # BEGIN generated columns")
        end = text.index("    # END generated columns")
        # the unit tests pin worked examples of named use cases: hand-written on purpose
        written = text[:begin] + text[end:].split("\nunit_tests:")[0]
        assert "- name: period_start\n" in text[begin:end], path
        assert "\n    columns:" not in written, path
        assert not [u for u in use_cases if f"{u}_score" in written], path
