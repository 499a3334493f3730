"""The README's five questions and a one-network lookup, three ways, timed in-process.

- ``ours``: the SQL of the README on the built database (marts are views over
  the published Parquet files), as a shell user asks them;
- ``tables``: the same SQL on a copy of the database whose relations are
  materialised as tables (what ``sync push`` publishes under ``read_only/``),
  so that the cost of views over Parquet is measured side by side;
- ``pandas``: upstream's way to the same answers: read the cache entries a
  question needs with pyarrow/pandas, merge downloads with uploads, compute
  (the IQB score included) in pandas.

Each is the median over ``repeats`` of the total time of all questions.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from bench.harness import REPO
from bench.steps import cache_entries
from extract.cache.layout import Entry
from extract.datasets import DATASETS_BY_NAME, Dataset


def readme_questions() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Transform: dbt and the duckdb shell", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


ONE_ASN = (
    "select * from quality_by_city_asn where asn = (select asn from quality_by_country_asn "
    "order by download_sample_count desc limit 1) order by period_start, city"
)


def timed(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sql_answers(database: Path) -> Callable[[], list]:
    """All questions on ``database``, in one read-only connection opened for each round."""
    questions = [*readme_questions(), ONE_ASN]

    def run() -> list:
        with duckdb.connect(str(database), read_only=True) as con:
            return [con.execute(q).fetchall() for q in questions]

    return run


def tables_copy(database: Path, target: Path) -> Path:
    """``database`` with every relation of ``main`` materialised as a table."""
    from extract.sync.snapshot import materialise_published

    target.unlink(missing_ok=True)
    materialise_published(database, target)
    return target


# --- upstream's way: pandas over the cache --------------------------------------------------

SEEDS = REPO / "dbt_project" / "seeds"
METRIC_OF = {
    "download_throughput_mbps": "download",
    "upload_throughput_mbps": "upload",
    "latency_ms": "latency",
    "packet_loss": "loss",
}


def requirements() -> dict[str, dict[str, tuple[float, float]]]:
    """use case -> metric -> (weight, threshold), from the seeds the dbt scores use."""
    table = pd.read_csv(SEEDS / "iqb_requirements.csv")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for row in table.to_dict("records"):
        reqs = out.setdefault(row["use_case"], {})
        reqs[METRIC_OF[row["requirement"]]] = (row["weight"], row["threshold"])
    return out


REQUIREMENTS = requirements()


def iqb_score(df: pd.DataFrame) -> pd.Series:
    scores = []
    for reqs in REQUIREMENTS.values():
        total = sum(w for w, _ in reqs.values())
        passed = sum(
            w * (df[f"{m}_p95"] > t if m in ("download", "upload") else df[f"{m}_p95"] < t)
            for m, (w, t) in reqs.items()
        )
        scores.append(passed / total)
    # sum() starts from 0, so mypy types it Series | int; a sum of Series is a Series
    return cast(pd.Series, sum(scores) / len(scores))


def merged(root: Path, entries: list[Entry], level: str, latest_only: bool) -> pd.DataFrame:
    """Downloads merged with uploads (upstream: inner merge) for one level, per period."""
    down = [e for e in entries if e.dataset.name == f"downloads_by_{level}"]
    if latest_only:
        down = [max(down, key=lambda e: e.start)]
    frames = []
    for d in down:
        up = Entry(uploads_of(d.dataset), d.start, d.end)
        dl = pq.read_table(d.data_path(root)).to_pandas()
        ul = pq.read_table(up.data_path(root)).to_pandas()
        m = dl.merge(ul, on=list(d.dataset.keys), suffixes=("_download", "_upload"))
        m["period_start"] = d.start
        frames.append(m)
    return pd.concat(frames, ignore_index=True)


def uploads_of(downloads: Dataset) -> Dataset:
    return DATASETS_BY_NAME[downloads.name.replace("downloads_by_", "uploads_by_", 1)]


def pandas_answers(root: Path) -> Callable[[], list]:
    def run() -> list:
        entries = cache_entries(root)
        enough = 100
        answers = []
        country = merged(root, entries, "country", latest_only=False)
        country["meets"] = (country["sample_count_download"] >= enough) & (
            country["sample_count_upload"] >= enough
        )
        country["iqb_score"] = iqb_score(country).where(country["meets"])
        latest = country[country["period_start"] == country["period_start"].max()]
        answers.append(
            latest.dropna(subset=["iqb_score"])
            .sort_values(["iqb_score", "download_p95"], ascending=False)
            .head(10)
        )  # 1
        answers.append(country[country["country_code"] == "ZA"].sort_values("period_start"))  # 2
        asn = merged(root, entries, "country_asn", latest_only=True)
        asn = asn[
            (asn["country_code"] == "ZA")
            & (asn["sample_count_download"] >= enough)
            & (asn["sample_count_upload"] >= enough)
        ]
        answers.append(asn.sort_values("sample_count_download", ascending=False).head(10))  # 3
        sub = merged(root, entries, "country_subdivision1", latest_only=True)
        sub = sub[sub["country_code"] == "BR"].assign(iqb_score=iqb_score)
        answers.append(sub.sort_values(["iqb_score", "download_p95"]))  # 4
        moves = country[country["meets"]].sort_values("period_start")
        moves["change"] = moves.groupby("country_code")["download_p50"].pct_change()
        answers.append(
            moves.dropna(subset=["change"])
            .reindex(moves["change"].abs().sort_values(ascending=False).index)
            .head(10)
        )  # 5
        city_asn = merged(root, entries, "country_city_asn", latest_only=False)
        top = asn["asn"].iloc[0] if len(asn) else 0
        answers.append(city_asn[city_asn["asn"] == top])  # one ASN
        return answers

    return run
