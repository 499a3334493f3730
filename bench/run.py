"""What ``make bench`` measures, section by section, and in what order.

One run of ``python -m bench`` synthesises (or reuses) the data, then
measures every figure side by side in the same process tree, so that ratios
compare like with like on a shared machine. Each section either fills its
figures or says, in ``unavailable``, why it could not.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from bench import synth
from bench.harness import BIN, REPO, Figure, Sample, StepFailed, child_env, repeat, run
from bench.report import Results, Row
from extract.cache.layout import CACHE_VERSION_DIR, Entry
from extract.datasets import DATASETS
from extract.engines.duckdb import raw_dir
from extract.sample.generate import calibration_table


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats; ``SMOKE`` shrinks everything so that the command is tested quickly."""

    months: int = 13  # latest months of the real manifest, at full size
    scale: float = 1.0
    older_scale: float = 0.05  # the other months of the full layout (sync no-op only)
    layout_months: int | None = None  # None: every month of the manifest (205)
    extract_rows: tuple[int, int] = (1_000_000, 10_000_000)
    seed: int = 0
    repeats: int = 5  # cheap steps
    build_repeats: int = 3  # dbt build, incremental, baseline, sync transfers
    big_repeats: int = 2  # extract of 10M rows
    min_free_gb: float = 8.0


FULL = Plan()
SMOKE = Plan(months=2, scale=0.004, older_scale=0.002, layout_months=3,
             extract_rows=(20_000, 40_000), repeats=1, build_repeats=1, big_repeats=1,
             min_free_gb=0.5)


def mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


class Bench:
    """The working directories and the results of one run."""

    def __init__(self, plan: Plan, work: Path, results: Results, echo: Callable[[str], None]
                 ) -> None:
        self.plan = plan
        self.work = work
        self.results = results
        self.echo = echo
        self.logs = work / "logs"
        self.window = work / "window"  # the latest `months` months: build and sync
        self.python = sys.executable

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def record(self, key: str, figure: Figure, section: str, step: str, rate: str = "",
               note: str = "", rss_key: str | None = None) -> None:
        self.results.figures[key] = round(figure.seconds, 3)
        if rss_key:
            self.results.figures[rss_key] = round(figure.rss_mb, 1)
        self.results.figures.setdefault("runs", {})[key] = list(figure.all_seconds)
        self.results.rows.append(Row(section, step, figure.seconds, figure.rss_mb, rate,
                                     figure.runs, note))
        self.echo(f"  {section}: {step}: {figure.seconds:.2f} s (median of {figure.runs}), "
                  f"peak RSS {figure.rss_mb:.0f} MB")

    # --- data --------------------------------------------------------------------------

    def check_disk(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.work).free / 1e9
        if free < self.plan.min_free_gb:
            raise SystemExit(f"bench: {free:.1f} GB free under {self.work}; "
                             f"need {self.plan.min_free_gb} GB")

    def synthesise(self) -> None:
        t0 = time.perf_counter()
        written = synth.synth(self.window, self.plan.months, self.plan.seed, self.plan.scale)
        seconds = time.perf_counter() - t0
        self.results.data.update({
            "window_months": self.plan.months,
            "window_entries": written.entries,
            "window_rows": written.rows,
            "window_mb": round(written.bytes / 1e6, 1),
        })
        self.echo(f"  data: {written.entries} entries, {written.rows:,} rows, "
                  f"{written.bytes / 1e6:,.0f} MB in {self.window} ({seconds:.0f} s)")

    # --- build ---------------------------------------------------------------------------

    def floor_and_baseline(self) -> None:
        def step(name: str) -> Callable[[], Sample]:
            return lambda: run([self.python, "-m", "bench.steps", name, self.window],
                               self.log(name))

        window_mb = self.results.data["window_mb"]
        floor = repeat(self.plan.repeats, step("floor"))
        self.record("floor_s", floor, "build", "floor: DuckDB reads every byte once",
                    f"{window_mb / floor.seconds:,.0f} MB/s", rss_key="floor_rss_mb")
        baseline = repeat(self.plan.build_repeats, step("baseline"))
        self.record("baseline_s", baseline, "build",
                    "baseline: pandas per entry + merge, 6 levels",
                    f"{window_mb / baseline.seconds:,.0f} MB/s", rss_key="baseline_rss_mb")

    # --- extract -------------------------------------------------------------------------

    def extract(self) -> None:
        """The embedded engine on one month of raw rows, all twelve datasets."""
        config = self.work / "extract-month.yaml"
        config.write_text("version: 0\nmatrix:\n  dates:\n"
                          '    - {start: "2024-10-01", end: "2024-11-01"}\n'
                          "  granularities: [country, country_asn, subdivision1, "
                          "subdivision1_asn, city, city_asn]\n")
        figures: dict[str, Figure] = {}
        for label, raw_rows, times in (("1m", self.plan.extract_rows[0], self.plan.repeats),
                                       ("10m", self.plan.extract_rows[1],
                                        self.plan.big_repeats)):
            root = self.work / f"extract-{label}"
            rows = self._raw_sample(root, raw_rows)
            log = self.log(f"extract-{label}")
            figure = repeat(times, lambda root=root, log=log: run(
                [BIN / "iqb", "extract", "run", "--config", config, "--force",
                 "--artifacts", root], log))
            figures[label] = figure
            self.results.figures[f"extract_{label}_rows"] = rows
            self.results.figures[f"extract_{label}_rows_per_s"] = round(rows / figure.seconds)
            self.record(f"extract_{label}_s", figure, "extract",
                        f"iqb extract run, 12 datasets, {rows:,} raw rows",
                        f"{rows / figure.seconds / 1e3:,.0f} k rows/s",
                        rss_key=f"extract_{label}_rss_mb")
        ratio = figures["10m"].rss_mb / figures["1m"].rss_mb
        self.results.figures["extract_rss_ratio_10m_1m"] = round(ratio, 2)
        self.results.rows[-1].note = f"peak RSS 10M/1M = {ratio:.2f}"

    def _raw_sample(self, root: Path, raw_rows: int) -> int:
        """Write (or reuse) one month of raw measurements totalling about ``raw_rows``."""
        down = sum(calibration_table("downloads").column("sample_count").to_pylist())
        up = sum(calibration_table("uploads").column("sample_count").to_pylist())
        download_rows = round(raw_rows * down / (down + up))
        marker = root / "bench-sample.json"
        params = {"download_rows": download_rows, "seed": self.plan.seed}
        files = sorted(raw_dir(root).rglob("*.parquet"))
        if not (marker.is_file() and json.loads(marker.read_text()) == params and files):
            shutil.rmtree(root, ignore_errors=True)
            sample = run([BIN / "iqb", "sample", "--months", "2024-10..2024-10",
                          "--rows", str(download_rows), "--seed", str(self.plan.seed),
                          "--artifacts", root], self.log("sample"))
            self.echo(f"  extract: sample of {raw_rows:,} raw rows written in "
                      f"{sample.seconds:.0f} s")
            marker.write_text(json.dumps(params))
            files = sorted(raw_dir(root).rglob("*.parquet"))
        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def next_month_entries(window: dict[synth.Period, list[Entry]]) -> tuple[synth.Period,
                                                                         list[Entry]]:
    """The month after the manifest's last one, with all twelve datasets: the new month."""
    last = list(window)[-1]
    start = last.end
    end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return synth.Period(start, end), [Entry(d, start, end) for d in DATASETS]


def cache_dir(root: Path) -> Path:
    return root / CACHE_VERSION_DIR


def available(cmd: list[str | Path]) -> str | None:
    """None when ``cmd`` (a ``--help`` call) works, else why not."""
    try:
        run(cmd, Path("/dev/null"), env=child_env())
    except (StepFailed, OSError) as err:
        return str(err).splitlines()[0]
    return None


def main_run(plan: Plan, work: Path, results: Results, echo: Callable[[str], None],
             sections: tuple[str, ...]) -> None:
    bench = Bench(plan, work, results, echo)
    bench.check_disk()
    bench.synthesise()
    if "build" in sections:
        bench.floor_and_baseline()
    if "extract" in sections:
        bench.extract()
    _ = REPO
