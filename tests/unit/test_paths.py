"""extract/paths.py is the one place that names the artifacts tree.

(That dbt opens the database it names: tests/dbt/test_paths.py.)
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from extract import paths
from extract.cache.layout import CACHE_KEY_RE, PERIOD_SQL_RE
from extract.paths import ArtifactPaths
from extract.sync.manifest import key_problem
from tests.conftest import REPO


def test_every_path_is_under_the_root_at_its_documented_place(tmp_path: Path) -> None:
    p = ArtifactPaths(tmp_path)
    rel = {k: Path(v).relative_to(tmp_path).as_posix() for k, v in p.as_dict().items()}
    assert rel == {
        "root": ".",
        "cache": "cache/v1",
        "raw": "raw",
        "database": "iqb.duckdb",
        "marts": "marts",
        "mart_builds": "marts/.builds",
        "read_only": "read_only",
        "report": "report",
        "state": "state",
        "locks": "state/locks",
        "hash_index": "state/hash-index.json",
        "verified": "state/verified",
        "logs": "state/logs",
        "manifest": "state/manifest.json",
        "manifests_history": "state/manifests",
        "snapshot_state": "state/snapshot.json",
        "pulled": "state/pulled.json",
        "working_database": "state/dbt/iqb.duckdb",
        "published_record": "state/dbt/published.json",
        "publishing": "state/publish",
        "build_lock": "state/locks/dbt-build.lock",
    }
    for name in rel:  # the module docstring draws the tree: each part is in it
        assert rel[name] == "." or rel[name].rsplit("/", 1)[-1] in paths.__doc__, name


def test_the_root_of_a_database_and_a_database_named_otherwise(tmp_path: Path) -> None:
    assert ArtifactPaths.of_working_database(tmp_path / "state/dbt/iqb.duckdb").root == tmp_path
    assert ArtifactPaths.of_working_database("state/dbt/iqb.duckdb").root == Path.cwd()
    for other in ("state/dbt/other.duckdb", "iqb.duckdb", "state/x/iqb.duckdb"):
        with pytest.raises(ValueError, match=r"extract/paths\.py"):
            ArtifactPaths.of_working_database(tmp_path / other)


def test_default_root_follows_the_variable_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(paths.ENV_ARTIFACTS, raising=False)
    assert paths.default_artifacts() == tmp_path / "artifacts"
    monkeypatch.setenv(paths.ENV_ARTIFACTS, "")  # empty counts as unset, as in the profile
    assert paths.default_artifacts() == tmp_path / "artifacts"
    monkeypatch.setenv(paths.ENV_ARTIFACTS, "rel/x")
    assert paths.default_artifacts() == tmp_path / "rel" / "x"
    assert paths.checkout_artifacts() == REPO / "artifacts"


def test_keys_in_the_bucket_are_the_same_names() -> None:
    key = paths.snapshot_key(datetime(2024, 11, 30, 12, 0, 1))
    assert key == "read_only/iqb_20241130T120001Z.duckdb"
    assert paths.SNAPSHOT_KEY_RE.match(key) and key_problem(key) is None
    entry = "cache/v1/20241001T000000Z/20241101T000000Z/downloads_by_country/data.parquet"
    assert CACHE_KEY_RE.match(entry)
    # the pattern dbt's staging takes the period with (DuckDB's regexp_extract)
    period = re.search(PERIOD_SQL_RE, "/x/" + entry)
    assert period and period.groups() == ("20241001", "20241101")
    assert key_problem(paths.DATABASE) and key_problem(paths.HASH_INDEX)  # never published


# Path literals outside extract/paths.py: "iqb.duckdb", "state/...", root / "marts", "read_only",
# and the names inside a mart's and a publish's folder ("period=...", "data_0.parquet",
# ".builds", "COMMIT", "plans").
_TREE = r"(?:state|cache|marts|read_only|raw|report)"
_INNER = r"(?:period=|data_0\.parquet|\.builds|\.staging|COMMIT[\"']|plans[\"'])"
_SPELLED = re.compile(
    rf"[\"'](?:iqb\.duckdb[\"']|{_TREE}/|read_only[\"']|{_INNER})|/\s*[\"']{_TREE}[\"']"
)


def test_no_other_module_spells_the_tree() -> None:
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for top in ("extract", "bench")
        for path in sorted((REPO / top).rglob("*.py"))
        if path != REPO / "extract" / "paths.py" and "node_modules" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if _SPELLED.search(line)
    ]
    assert not found, "use extract/paths.py:\n" + "\n".join(found)


def test_no_dbt_macro_spells_the_tree() -> None:
    """Macros get paths from the plugin (iqb_paths, iqb_cache_files, ...), not copies."""
    for path in sorted((REPO / "dbt_project" / "macros").rglob("*.sql")):
        code = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)  # comments may
        assert not re.search(
            r"cache/v1|iqb\.duckdb|read_only|marts/|state/|period=|data_0|\.builds|COMMIT", code
        ), path
