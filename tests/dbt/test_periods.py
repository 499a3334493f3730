"""A cache folder whose period is not a calendar month that has begun is never built.

Built, a future month would be published and become "latest" in the API and the
report; a week would sit beside the months as if it were one. The cache catalog
(extract/cache/catalog.py), which the dbt plugin reads, refuses both.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from extract.cache.layout import stamp
from extract.months import current_month, next_month
from tests.dbt.helpers import OCT_2024, copy_real_october, dbt, query


@pytest.mark.parametrize(
    "period",
    [
        (next_month(current_month()), next_month(next_month(current_month()))),
        (OCT_2024.split("/")[2][:8], "20241015"),
    ],
    ids=["future month", "half a month"],
)
def test_dbt_build_refuses_a_period_that_is_not_a_begun_month(
    tmp_path: Path, period: tuple
) -> None:
    root = tmp_path / "artifacts"
    copy_real_october(root)
    dbt("build", artifacts=root, target=tmp_path / "target")
    marts_before = sorted(p.relative_to(root) for p in (root / "marts").rglob("*"))
    start, end = period
    start = start if isinstance(start, str) else stamp(start)[:8]
    end = end if isinstance(end, str) else stamp(end)[:8]
    folder = root / f"cache/v1/{start}T000000Z/{end}T000000Z"
    shutil.copytree(root / OCT_2024, folder)
    run = dbt("build", artifacts=root, target=tmp_path / "target", check=False)
    assert run.returncode != 0, run.output
    assert "nothing was built" in run.output, run.output
    assert f"{start}T000000Z/{end}T000000Z/downloads_by_country" in run.output
    assert (
        "starts after the current month" in run.output or "is not a calendar month" in run.output
    ), run.output
    assert f"remove the folder {folder}" in run.output
    # the last good build stays what readers see: October 2024 only
    assert sorted(p.relative_to(root) for p in (root / "marts").rglob("*")) == marts_before
    assert query(root, "select distinct period_start::varchar from quality_by_country") == [
        ("2024-10-01",)
    ]
