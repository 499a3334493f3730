"""The plan of a run and what every section shares: its folders, its records, dbt.

A section (``bench/sections/``) is a mixin over ``BenchCore``; ``bench/run.py``
puts them together and runs the selected ones in order.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import synth
from bench.harness import BIN, REPO, Figure, Sample, repeat
from bench.report import Results, Row
from extract.paths import CACHE_DIR, ArtifactPaths


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats; ``SMOKE`` shrinks everything so that the command is tested quickly."""

    months: int = 13  # latest months of the real manifest, at full size
    scale: float = 1.0
    older_scale: float = 0.05  # the other months of the full layout (sync no-op only)
    layout_months: int | None = None  # None: every month of the manifest (205)
    extract_rows: tuple[int, int, int] = (1_000_000, 10_000_000, 30_000_000)
    seed: int = 0
    repeats: int = 5  # cheap steps
    build_repeats: int = 3  # dbt build, incremental, baseline, sync transfers
    big_repeats: int = 2  # extract of 10M rows
    min_free_gb: float = 20.0  # the 52-month history: ~5 GB of cache and ~5 GB of marts
    long_months: int = 52  # the scale section's longest history at full size


FULL = Plan()
SMOKE = Plan(
    months=2,
    scale=0.004,
    older_scale=0.002,
    layout_months=3,
    extract_rows=(20_000, 40_000, 60_000),
    repeats=1,
    build_repeats=1,
    big_repeats=1,
    min_free_gb=0.5,
    long_months=4,
)


def _link_parquet(source: str, target: str) -> None:
    if source.endswith(".parquet"):
        os.link(source, target)
    else:
        shutil.copy2(source, target)


def mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


class BenchCore:
    """The working directories and the results of one run."""

    def __init__(
        self, plan: Plan, work: Path, results: Results, echo: Callable[[str], None]
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

    def record(
        self,
        key: str,
        figure: Figure,
        section: str,
        step: str,
        rate: str = "",
        note: str = "",
        rss_key: str | None = None,
    ) -> Row:
        self.results.figures[key] = round(figure.seconds, 3)
        if rss_key:
            self.results.figures[rss_key] = round(figure.rss_mb, 1)
        self.results.figures.setdefault("runs", {})[key] = list(figure.all_seconds)
        row = Row(
            section,
            step,
            figure.seconds,
            figure.rss_mb,
            figure.cpu_seconds,
            rate,
            figure.runs,
            note,
        )
        self.results.rows.append(row)
        self.echo(
            f"  {section}: {step}: {figure.seconds:.2f} s (median of {figure.runs}), "
            f"peak RSS {figure.rss_mb:.0f} MB"
        )
        return row

    # --- data --------------------------------------------------------------------------

    def check_disk(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.work).free / 1e9
        if free < self.plan.min_free_gb:
            raise SystemExit(
                f"bench: {free:.1f} GB free under {self.work}; need {self.plan.min_free_gb} GB"
            )

    def synthesise(self) -> None:
        t0 = time.perf_counter()
        written = synth.synth(self.window, self.plan.months, self.plan.seed, self.plan.scale)
        seconds = time.perf_counter() - t0
        self.results.data.update(
            {
                "window_months": self.plan.months,
                "window_entries": written.entries,
                "window_rows": written.rows,
                "window_mb": round(written.bytes / 1e6, 1),
            }
        )
        self.echo(
            f"  data: {written.entries} entries, {written.rows:,} rows, "
            f"{written.bytes / 1e6:,.0f} MB in {self.window} ({seconds:.0f} s)"
        )

    def new_month(self) -> tuple[synth.Period, Path, list[str]]:
        """The month after the window's last, all twelve datasets at full size (written once).

        Shared by the build section and every history of the scale section: all
        of them end with the same latest month.
        """
        periods = synth.latest(synth.manifest_entries(), self.plan.months)
        period, entries = synth.next_period(periods)
        folder = self.work / "new-month"
        synth.write_entries(folder, {period: entries}, self.plan.seed, self.plan.scale)
        return period, folder, [e.key for e in entries]

    def layout(self) -> synth.Written:
        """The manifest's full layout under ``work/full``: the window linked, older months small.

        Shared by the sync section (no-op push and status) and the scale
        section (the 205-month history), and written once.
        """
        periods = synth.manifest_entries()
        keys = [e.key for es in synth.latest(periods, self.plan.months).values() for e in es]
        full = self.work / "full"
        synth.link_tree(self.window, full, keys)
        return synth.synth(
            full,
            self.plan.months,
            self.plan.seed,
            self.plan.scale,
            self.plan.older_scale,
            self.plan.layout_months,
        )

    # --- dbt ------------------------------------------------------------------------------

    def one_new_month(
        self, root: Path, times: int, build: Callable[[], Sample]
    ) -> tuple[Figure, synth.Period]:
        """``times`` builds of ``root`` after adding the month after the window's.

        Each starts from the database and marts of the build ``root`` holds now
        (moved aside, put back before each run), as a user's next build does.
        """
        built = self.work / f"built-{root.name}"
        shutil.rmtree(built, ignore_errors=True)
        built.mkdir()
        for child in root.iterdir():
            if child.name != CACHE_DIR:
                shutil.move(child, built / child.name)
        period, new_month, keys = self.new_month()

        def add_month() -> None:
            self.drop(keys, root)
            self.reset_window(keep=built, root=root)
            synth.link_tree(new_month, root, keys)

        try:
            return repeat(times, build, before=add_month), period
        finally:
            self.drop(keys, root)
            shutil.rmtree(built, ignore_errors=True)

    def dbt(self, *args: str | Path) -> list[str | Path]:
        """A dbt command on the project, with target and logs kept out of the shared checkout."""
        return [
            BIN / "dbt",
            *args,
            "--project-dir",
            REPO / "dbt_project",
            "--profiles-dir",
            REPO / "profiles",
            "--target-path",
            self.work / "dbt-target",
            "--log-path",
            self.work / "dbt-logs",
        ]

    def reset_window(self, keep: Path | None = None, root: Path | None = None) -> None:
        """Drop everything dbt made under the window root (database, exports, state).

        With ``keep``, put back what a previous build made instead (as it was:
        copies of the databases, hard links to the Parquet files).
        ``root``: another artifacts root than the window (the scale section's).
        """
        root = root or self.window
        window = ArtifactPaths(root)
        for child in root.iterdir():
            if child == window.state:  # keep the cache's hash index, as a user's stays
                for sub in child.iterdir():
                    if sub != window.hash_index:
                        shutil.rmtree(sub) if sub.is_dir() else sub.unlink()
            elif child.name != CACHE_DIR:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        if keep is not None:
            # Hard links for the Parquet files: a build never writes one in place
            # (it writes new files and renames links over the public names). A
            # copy of gigabytes would leave its write-back to the timed build
            # (1.2 GB of marts at 13 months, 5 GB at 52: the long history paid
            # more). The databases are written in place: copies.
            shutil.copytree(keep, root, dirs_exist_ok=True, copy_function=_link_parquet)
        os.sync()  # what the reset wrote or freed is on disk before the timed step

    def drop(self, keys: list[str], root: Path | None = None) -> None:
        for key in keys:
            shutil.rmtree((root or self.window) / key, ignore_errors=True)

    def operations_s(self) -> float:
        """Seconds the last dbt run spent in its hooks: the write-audit-publish gates."""
        results = json.loads((self.work / "dbt-target" / "run_results.json").read_text())
        return sum(
            r["execution_time"]
            for r in results["results"]
            if r["unique_id"].startswith("operation.")
        )

    def dbt_split(self, wall: float) -> str:
        """Where the last dbt run spent its time, from its run_results.json (one thread).

        Models, tests and seeds by their execution time; the rest of the wall
        time is dbt itself (start-up, parse, graph, connections).
        """
        results = json.loads((self.work / "dbt-target" / "run_results.json").read_text())
        kinds: dict[str, float] = {}
        slowest = max(results["results"], key=lambda r: r["execution_time"])
        for result in results["results"]:
            kind = result["unique_id"].split(".", 1)[0]
            kinds[kind] = kinds.get(kind, 0.0) + result["execution_time"]
        spent = sum(kinds.values())
        parts = [
            f"{kind}s {seconds:.1f} s" for kind, seconds in sorted(kinds.items()) if seconds >= 0.05
        ]
        # --threads when given, else the profile's (run_results.json records only the flag)
        threads = results.get("args", {}).get("threads") or "the profile's"
        if spent <= wall:
            parts.append(f"dbt itself {wall - spent:.1f} s")
        else:  # several threads: node times overlap, their sum exceeds the wall time
            parts.append(f"node times overlap ({threads} threads)")
        parts.append(
            f"slowest {slowest['unique_id'].rsplit('.', 1)[-1]} {slowest['execution_time']:.1f} s"
        )
        return "last run: " + ", ".join(parts)
