"""The HTML report as the bucket serves it: opened from its content-addressed object,
it finds its scripts and data at their own addresses (docs/report.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from extract.report_html.build import write_html_report
from extract.sync.push import push
from extract.sync.remote import GcsRemote
from tests.dbt.helpers import dbt
from tests.report.helpers import element, render
from tests.sync.helpers import FAST, Bucket

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
