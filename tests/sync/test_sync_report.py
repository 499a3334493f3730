"""The HTML report as the bucket serves it: opened from its content-addressed object,
it finds its scripts and data at their own addresses (docs/report.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
import requests

from extract.results.html.build import write_html_report
from extract.sync.push import push
from extract.sync.remote import GcsRemote
from tests.conftest import REPO
from tests.dbt.helpers import dbt
from tests.report.helpers import element, render
from tests.sync.helpers import FAST, Bucket, iqb

pytestmark = pytest.mark.slow


def test_the_published_report_opens_from_the_bucket(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    dbt("build", artifacts=demo, target=tmp_path / "target")
    write_html_report(demo)
    push(demo, GcsRemote.from_env(FAST), jobs=4, allow_synthetic=True)
    manifest = requests.get(bucket.manifest_http, timeout=5).json()
    page = manifest["files"]["report/index.html"]["url"]
    assert re.search(r"/objects/report/[0-9a-f]{64}/index\.html$", page)
    assert requests.get(page, timeout=5).headers["content-type"].startswith("text/html")

    rendered = render(f"{page}#country=ZA&level=subdivision1", tmp_path, loopback=True)
    world = element(rendered.dom, "map")
    assert 'data-countries="' in world and world.count("<path") > 150  # data and map loaded
    assert "South Africa (ZA), 2024-10" in element(rendered.dom, "country-title")
    drill = element(rendered.dom, "drill")  # a data file loaded on demand, by its address
    assert "loading" not in drill and drill.count("<tr") > 3
    # and from a folder, the same page reads the files beside it
    local = render((demo / "report" / "index.html").as_uri(), tmp_path)
    assert element(local.dom, "map").count("<path") > 150 and local.page_requests == []


def _summary(root: Path) -> dict:
    text = (root / "report" / "data" / "summary.js").read_text()
    return json.loads(text.strip().removeprefix("IQB.summary(").removesuffix(");"))


def _newest_snapshot(root: Path) -> dict:
    """The percentile, periods and min_sample_count the newest pulled snapshot holds."""
    newest = sorted((root / "read_only").glob("iqb_*.duckdb"))[-1]
    with duckdb.connect(str(newest), read_only=True) as con:
        [(pct,)] = con.execute("select max(score_percentile) from iqb_scores_by_country").fetchall()
        periods = con.execute(
            "select period_start::varchar, period_end::varchar, max(min_sample_count) "
            "from quality_by_country group by all order by all"
        ).fetchall()
    return {"score_percentile": pct, "periods": [list(p) for p in periods]}


def test_a_push_refuses_a_report_of_another_build(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    """Build at percentile 50, report, build at 95: the push names the difference and the
    command that fixes it, publishes nothing; after that command, the pulled report and the
    pulled snapshot show the same build."""
    dbt("build", "--vars", "{iqb_percentile: 50}", artifacts=demo, target=tmp_path / "t50")
    write_html_report(demo)
    push(demo, GcsRemote.from_env(FAST), jobs=4, allow_synthetic=True)
    published = bucket.manifest_generation()

    dbt("build", artifacts=demo, target=tmp_path / "t95")  # iqb_percentile 95, the default
    for args in (["--dry-run"], []):
        proc = iqb("sync", "push", "--allow-synthetic", "--artifacts", str(demo), *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "scores at percentile 50 in the report, 95 in the database" in proc.stderr
        assert "Run `iqb report --html`" in proc.stderr and "Traceback" not in proc.stderr
    assert bucket.manifest_generation() == published

    # without a report here, the published one (of the percentile-50 build) would stay
    shutil.rmtree(demo / "report")
    proc = iqb("sync", "push", "--allow-synthetic", "--artifacts", str(demo))
    assert proc.returncode == 1 and "mix two builds" in proc.stderr, proc.stderr
    assert "report/data/summary.js" in proc.stderr  # the first ten named, sorted
    assert bucket.manifest_generation() == published

    proc = iqb("report", "--html", env={"IQB_ARTIFACTS": str(demo)})
    assert proc.returncode == 0, proc.stderr
    proc = iqb("sync", "push", "--allow-synthetic", "--artifacts", str(demo))
    assert proc.returncode == 0, proc.stderr
    reader = tmp_path / "reader"
    proc = iqb("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(reader))
    assert proc.returncode == 0, proc.stderr
    report, snapshot = _summary(reader), _newest_snapshot(reader)
    assert report["score_percentile"] == snapshot["score_percentile"] == 95
    assert [[p["start"], p["end"], p["min_sample_count"]] for p in report["periods"]] == (
        snapshot["periods"]
    )


def test_a_dry_run_predicts_the_bytes_the_push_moves(
    demo: Path, bucket: Bucket, tmp_path: Path
) -> None:
    """The snapshot materialises every view as a table: sized from the live database
    (views over marts/), a dry run predicted a fraction of what the push then moved."""
    dbt("build", artifacts=demo, target=tmp_path / "target")
    write_html_report(demo)
    before = sorted(p.relative_to(demo).as_posix() for p in demo.rglob("*"))
    wrapper = REPO / "sync_artifacts.sh"
    proc = subprocess.run(
        [str(wrapper), "--dry-run", "--allow-synthetic", "--artifacts", str(demo)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"would upload  (read_only/iqb_\S+\.duckdb)", proc.stdout)
    assert found, proc.stdout
    predicted = re.search(
        r"dry run: \d+ file\(s\), [\d.]+ MB would be uploaded \((\d+) bytes\)", proc.stdout
    )
    assert predicted, proc.stdout
    # the dry run wrote nothing: no snapshot, no scratch copy, no record of one
    assert sorted(p.relative_to(demo).as_posix() for p in demo.rglob("*")) == before
    assert bucket.objects() == {}

    report = push(demo, GcsRemote.from_env(FAST), jobs=4, allow_synthetic=True)
    stored = sum(b.size for b in bucket.client.list_blobs(bucket.name, prefix="objects/") if b.size)
    assert report.bytes == stored
    assert abs(int(predicted.group(1)) - stored) <= 0.05 * stored, (predicted, stored)
