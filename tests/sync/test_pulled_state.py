"""A pulled state is usable as pulled: no dbt, no iqb.duckdb, only what the bucket served.

A researcher runs `iqb cache pull <manifest>` into an empty folder: the published
snapshot arrives as read_only/iqb_<UTC>.duckdb (every relation a table). The API,
`iqb report`, `iqb report --html` and the duckdb shell must answer from it, with
the publisher's numbers, and say which state they read.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from extract.results import api
from extract.sync.push import push
from extract.sync.remote import GcsRemote
from tests.dbt.helpers import dbt, shell
from tests.sync.helpers import FAST, Bucket, iqb

pytestmark = pytest.mark.slow


def test_a_pulled_state_answers_without_dbt_and_says_which(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    dbt("build", artifacts=demo, target=tmp_path / "target")
    published = push(demo, GcsRemote.from_env(FAST), jobs=4, allow_synthetic=True).state
    assert published is not None
    reader = tmp_path / "reader" / "artifacts"
    pulled = iqb("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(reader))
    assert pulled.returncode == 0, pulled.stderr
    assert not (reader / "iqb.duckdb").exists()  # no dbt ran here
    [snapshot] = (reader / "read_only").glob("iqb_*.duckdb")

    state = api.state(artifacts=reader)
    assert state["snapshot"] and state["path"] == snapshot
    assert state["origin"] == bucket.manifest_http
    assert state["built_at"] is not None
    assert f"pulled snapshot {snapshot.name}" in state["describe"]
    # the published state the manifest named: its id and commit, as the bucket's history lists it
    assert state["state_id"] == published.id and f"state {published.id}" in state["describe"]
    assert not api.state(artifacts=demo)["snapshot"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", api.SyntheticDataWarning)  # the demo is synthetic
        for call in (
            lambda root: api.scores("country", artifacts=root),
            lambda root: api.scores("city", country="ZA", percentile=50, artifacts=root),
            lambda root: api.scores("country", config=api.config(artifacts=root), artifacts=root),
            lambda root: api.trend("ZA", artifacts=root),
        ):
            pd.testing.assert_frame_equal(call(reader), call(demo), check_exact=True)

    text = iqb("report", "--artifacts", str(reader))
    assert text.returncode == 0, text.stderr
    assert f"reading pulled snapshot {snapshot.name} (state {published.id}" in text.stdout
    assert f"from {bucket.manifest_http}" in text.stdout
    assert f"-readonly {snapshot}" in text.stdout or f"read_only/{snapshot.name}" in text.stdout
    assert "best 5 of" in text.stdout

    html = iqb("report", "--html", str(tmp_path / "page"), "--artifacts", str(reader))
    assert html.returncode == 0, html.stderr
    assert (tmp_path / "page" / "index.html").is_file()
    assert f"from pulled snapshot {snapshot.name}" in html.stdout

    shell_run = shell(
        snapshot,
        "select count(*) > 0 as scored from iqb_scores_all_percentiles_by_country "
        "where score_percentile = 50 and iqb_score is not null;",
        "-csv",
    )
    assert shell_run.returncode == 0 and shell_run.stdout.split() == ["scored", "true"]
