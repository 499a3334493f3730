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
from pathlib import Path

import pyarrow.parquet as pq

from bench import explore, gcs, questions, synth
from bench.harness import BIN, REPO, Figure, Sample, StepFailed, child_env, repeat, run
from bench.report import Results, Row
from extract import defaults
from extract.extraction.sample.generate import calibration_table
from extract.paths import CACHE_DIR, ENV_ARTIFACTS, MANIFEST, STATE, ArtifactPaths


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
    min_free_gb: float = 8.0


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
)


def mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


class Bench:
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

    # --- build ---------------------------------------------------------------------------

    def floor_and_baseline(self) -> None:
        def step(name: str) -> Callable[[], Sample]:
            return lambda: run(
                [self.python, "-m", "bench.steps", name, self.window], self.log(name)
            )

        window_mb = self.results.data["window_mb"]
        floor = repeat(self.plan.repeats, step("floor"))
        self.record(
            "floor_s",
            floor,
            "build",
            "floor: DuckDB reads every byte once",
            f"{window_mb / floor.seconds:,.0f} MB/s",
            rss_key="floor_rss_mb",
        )
        baseline = repeat(self.plan.build_repeats, step("baseline"))
        self.record(
            "baseline_s",
            baseline,
            "build",
            "baseline: pandas per entry + merge, 6 levels",
            f"{window_mb / baseline.seconds:,.0f} MB/s",
            rss_key="baseline_rss_mb",
        )

    # --- extract -------------------------------------------------------------------------

    def extract(self) -> None:
        """The embedded engine on one month of raw rows, all twelve datasets."""
        config = self.work / "extract-month.yaml"
        config.write_text(
            "version: 0\nmatrix:\n  dates:\n"
            '    - {start: "2024-10-01", end: "2024-11-01"}\n'
            "  granularities: [country, country_asn, subdivision1, "
            "subdivision1_asn, city, city_asn]\n"
        )
        figures: dict[str, Figure] = {}
        for label, raw_rows, times in (
            ("1m", self.plan.extract_rows[0], self.plan.repeats),
            ("10m", self.plan.extract_rows[1], self.plan.big_repeats),
            ("30m", self.plan.extract_rows[2], 1),
        ):
            root = self.work / f"extract-{label}"
            rows = self._raw_sample(root, raw_rows)
            log = self.log(f"extract-{label}")

            def extract(root: Path = root, log: Path = log) -> Sample:
                return run(
                    [
                        BIN / "iqb",
                        "extract",
                        "run",
                        "--config",
                        config,
                        "--force",
                        "--artifacts",
                        root,
                    ],
                    log,
                )

            figure = repeat(times, extract)
            figures[label] = figure
            self.results.figures[f"extract_{label}_rows"] = rows
            self.results.figures[f"extract_{label}_rows_per_s"] = round(rows / figure.seconds)
            self.record(
                f"extract_{label}_s",
                figure,
                "extract",
                f"iqb extract run, 12 datasets, {rows:,} raw rows",
                f"{rows / figure.seconds / 1e3:,.0f} k rows/s",
                rss_key=f"extract_{label}_rss_mb",
            )
        ratio = figures["10m"].rss_mb / figures["1m"].rss_mb
        self.results.figures["extract_rss_ratio_10m_1m"] = round(ratio, 2)
        self.results.rows[-2].note = f"peak RSS 10M/1M = {ratio:.2f}"
        self.results.rows[-1].note = (
            f"memory cap {defaults.MEMORY_GB:g} GB (--memory-gb); "
            f"peak RSS 30M/1M = "
            f"{figures['30m'].rss_mb / figures['1m'].rss_mb:.2f}"
        )

    def _raw_sample(self, root: Path, raw_rows: int) -> int:
        """Write (or reuse) one month of raw measurements totalling about ``raw_rows``."""
        down = sum(calibration_table("downloads").column("sample_count").to_pylist())
        up = sum(calibration_table("uploads").column("sample_count").to_pylist())
        download_rows = round(raw_rows * down / (down + up))
        marker = root / "bench-sample.json"
        params = {"download_rows": download_rows, "seed": self.plan.seed}
        files = sorted(ArtifactPaths(root).raw.rglob("*.parquet"))
        if not (marker.is_file() and json.loads(marker.read_text()) == params and files):
            shutil.rmtree(root, ignore_errors=True)
            sample = run(
                [
                    BIN / "iqb",
                    "sample",
                    "--months",
                    "2024-10..2024-10",
                    "--rows",
                    str(download_rows),
                    "--seed",
                    str(self.plan.seed),
                    "--artifacts",
                    root,
                ],
                self.log("sample"),
            )
            self.echo(
                f"  extract: sample of {raw_rows:,} raw rows written in {sample.seconds:.0f} s"
            )
            marker.write_text(json.dumps(params))
            files = sorted(ArtifactPaths(root).raw.rglob("*.parquet"))
        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)

    # --- dbt build and incremental -------------------------------------------------------

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

    def reset_window(self, keep: Path | None = None) -> None:
        """Drop everything dbt made under the window root (database, exports, state).

        With ``keep``, put back a copy of what a previous build made instead.
        """
        window = ArtifactPaths(self.window)
        for child in self.window.iterdir():
            if child == window.state:  # keep the cache's hash index, as a user's stays
                for sub in child.iterdir():
                    if sub != window.hash_index:
                        shutil.rmtree(sub) if sub.is_dir() else sub.unlink()
            elif child.name != CACHE_DIR:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        if keep is not None:
            for child in keep.iterdir():
                target = self.window / child.name
                if child.is_dir():
                    shutil.copytree(child, target, dirs_exist_ok=True)
                else:
                    shutil.copy2(child, target)

    def build(self) -> None:
        """Full ``dbt build`` over the window, then one new month on top of it."""
        env = child_env(**{ENV_ARTIFACTS: str(self.window)})
        log = self.log("dbt")
        # One untimed parse first: every timed build then parses partially, as a
        # user's second and later builds do (the first parse is reported apart).
        shutil.rmtree(self.work / "dbt-target", ignore_errors=True)
        parse = run(self.dbt("parse"), log, env)
        self.results.rows.append(
            Row(
                "build",
                "dbt parse, cold (once, untimed for builds)",
                parse.seconds,
                parse.rss_mb,
                parse.cpu_seconds,
                runs=1,
            )
        )
        self.results.figures["dbt_parse_cold_s"] = round(parse.seconds, 3)
        build = repeat(
            self.plan.build_repeats,
            lambda: run(self.dbt("build"), log, env),
            before=self.reset_window,
        )
        window_mb = self.results.data["window_mb"]
        floor = self.results.figures.get("floor_s")
        build_row = self.record(
            "build_s",
            build,
            "build",
            f"dbt build, all marts, {self.plan.months} months",
            f"{window_mb / build.seconds:,.0f} MB/s",
            note=self.dbt_split(build.all_seconds[-1]),
            rss_key="build_rss_mb",
        )
        if floor:
            ratio = build.seconds / floor
            self.results.figures["build_over_floor"] = round(ratio, 2)
            build_row.note = f"build/floor = {ratio:.1f}; {build_row.note}"
        baseline = self.results.figures.get("baseline_s")
        if baseline:
            ratio = baseline / build.seconds
            self.results.figures["baseline_over_build"] = round(ratio, 2)
            build_row.note = f"baseline/build = {ratio:.2f}; {build_row.note}"

        wap = self.operations_s()
        self.results.figures["publish_s"] = round(wap, 3)
        build_row.note += (
            f"; write-audit-publish gates (on-run-start + on-run-end) "
            f"{wap:.1f} s = {wap / build.seconds:.0%}"
        )

        # A build with nothing new: dbt's fixed cost, and nothing re-read.
        noop = repeat(self.plan.repeats, lambda: run(self.dbt("build"), log, env))
        self.record(
            "noop_build_s",
            noop,
            "build",
            "dbt build with nothing new (no-op)",
            note=self.dbt_split(noop.all_seconds[-1]),
            rss_key="noop_build_rss_mb",
        )
        self.questions()

        # The database of the last full build is the starting point of every incremental run.
        built = self.work / "built"
        shutil.rmtree(built, ignore_errors=True)
        built.mkdir()
        for child in self.window.iterdir():
            if child.name != CACHE_DIR:
                shutil.move(child, built / child.name)
        periods = synth.latest(synth.manifest_entries(), self.plan.months)
        period, entries = synth.next_period(periods)
        new_month = self.work / "new-month"
        synth.write_entries(new_month, {period: entries}, self.plan.seed, self.plan.scale)
        keys = [e.key for e in entries]

        def add_month() -> None:
            self.drop(keys)
            self.reset_window(keep=built)
            synth.link_tree(new_month, self.window, keys)

        try:
            incremental = repeat(
                self.plan.build_repeats, lambda: run(self.dbt("build"), log, env), before=add_month
            )
        finally:
            self.drop(keys)
        ratio = incremental.seconds / build.seconds
        self.results.figures["incremental_over_build"] = round(ratio, 2)
        share = (incremental.seconds - noop.seconds) / (build.seconds - noop.seconds)
        self.results.figures["incremental_share"] = round(share, 3)
        self.record(
            "incremental_s",
            incremental,
            "build",
            f"dbt build after adding 1 month ({period.start:%Y-%m}, 12 datasets)",
            note=f"incremental/build = {ratio:.2f}; (incremental - noop) / (build - noop)"
            f" = {share:.2f}; {self.dbt_split(incremental.all_seconds[-1])}",
            rss_key="incremental_rss_mb",
        )

    def operations_s(self) -> float:
        """Seconds the last dbt run spent in its hooks: the write-audit-publish gates."""
        results = json.loads((self.work / "dbt-target" / "run_results.json").read_text())
        return sum(
            r["execution_time"]
            for r in results["results"]
            if r["unique_id"].startswith("operation.")
        )

    def questions(self) -> None:
        """The README's questions on the built database, on a tables copy, and in pandas."""
        database = ArtifactPaths(self.window).database
        tables = questions.tables_copy(database, self.work / "questions-tables.duckdb")
        repeats = max(3, self.plan.repeats)
        ours = questions.timed(repeats, questions.sql_answers(database))
        on_tables = questions.timed(repeats, questions.sql_answers(tables))
        pandas = questions.timed(
            max(1, self.plan.build_repeats), questions.pandas_answers(self.window)
        )
        figures = self.results.figures
        figures.update(
            questions_s=round(ours, 4),
            questions_tables_s=round(on_tables, 4),
            questions_pandas_s=round(pandas, 3),
            questions_views_over_tables=round(ours / on_tables, 2),
            questions_pandas_over_ours=round(pandas / ours, 1),
        )
        for seconds, step, note in (
            (
                ours,
                "README's 5 questions + one-ASN lookup, duckdb on iqb.duckdb",
                f"views over Parquet / tables = {ours / on_tables:.2f}",
            ),
            (on_tables, "same, on a copy with every relation a table", ""),
            (
                pandas,
                "same answers the upstream way: pandas over the cache",
                f"pandas / ours = {pandas / ours:.1f}",
            ),
        ):
            self.results.rows.append(Row("build", step, seconds, None, None, "", repeats, note))
            self.echo(f"  build: {step}: {seconds * 1000:.0f} ms")
        self.rescore(repeats)

    def rescore(self, repeats: int) -> None:
        """Every country's score at another percentile and with a config, through the
        API, side by side with reading the built scores (bench/explore.py)."""
        took = explore.rescore_timings(self.window, repeats)
        self.results.figures.update(
            rescore_read_s=round(took["read"], 4),
            rescore_percentile_s=round(took["percentile"], 4),
            rescore_config_s=round(took["config"], 4),
        )
        rows = f"{took['rows']:,} country rows"
        for seconds, step, note in (
            (took["read"], "every country's built score: api.scores('country')", rows),
            (
                took["percentile"],
                f"same at p{explore.PERCENTILE}, no rebuild: api.scores(percentile=)",
                f"/ read = {took['percentile'] / took['read']:.1f}",
            ),
            (
                took["config"],
                f"same at p{explore.PERCENTILE} with a config: api.scores(config=)",
                f"/ read = {took['config'] / took['read']:.1f}",
            ),
        ):
            self.results.rows.append(Row("build", step, seconds, None, None, "", repeats, note))
            self.echo(f"  build: {step}: {seconds * 1000:.0f} ms")

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

    def drop(self, keys: list[str]) -> None:
        for key in keys:
            shutil.rmtree(self.window / key, ignore_errors=True)

    # --- sync ------------------------------------------------------------------------------

    def sync(self) -> None:
        """Push and pull of the window's cache, then no-op push/status over the full layout."""
        periods = synth.manifest_entries()
        keys = [e.key for es in synth.latest(periods, self.plan.months).values() for e in es]
        source = self.work / "sync-window"  # the window's cache alone (no database), linked
        shutil.rmtree(source / STATE, ignore_errors=True)
        synth.link_tree(self.window, source, keys)
        size = mb(source / CACHE_DIR)
        full = self.work / "full"
        synth.link_tree(self.window, full, keys)
        layout = synth.synth(
            full,
            self.plan.months,
            self.plan.seed,
            self.plan.scale,
            self.plan.older_scale,
            self.plan.layout_months,
        )
        self.results.data.update(
            {
                "layout_entries": layout.entries,
                "layout_files": 2 * layout.entries,
                "layout_mb": round(layout.bytes / 1e6, 1),
            }
        )
        self.echo(
            f"  sync: full layout {layout.entries} entries ({2 * layout.entries} files, "
            f"{layout.bytes / 1e6:,.0f} MB) in {full}"
        )
        log = self.log("sync")
        with gcs.fake_gcs(self.log("fake-gcs")) as server:
            buckets = iter(f"iqb-bench-{i}" for i in range(10_000))
            last: list[str] = []

            def push(jobs: int) -> Callable[[], Sample]:
                def step() -> Sample:
                    if last:
                        server.empty_bucket(last.pop())
                    bucket = next(buckets)
                    server.create_bucket(bucket)
                    last.append(bucket)
                    # A first push: no hash index yet, so every file is hashed and sent.
                    shutil.rmtree(source / STATE, ignore_errors=True)
                    return run(
                        [*self.push_cmd(source), "--jobs", str(jobs)],
                        log,
                        child_env(**server.env(bucket)),
                    )

                return step

            rows: dict[str, Row] = {}
            for jobs in (1, 8):
                figure = repeat(self.plan.build_repeats, push(jobs))
                self.results.figures[f"push_jobs{jobs}_mbps"] = round(size / figure.seconds, 1)
                rows["push"] = self.record(
                    f"push_jobs{jobs}_s",
                    figure,
                    "sync",
                    f"push {self.plan.months} months, --jobs {jobs}",
                    f"{size / figure.seconds:,.0f} MB/s",
                )
            # A public bucket's manifest URL (https:// in production, plain http on
            # loopback), and a private bucket's gs:// manifest, read via the GCS client.
            public = f"{server.url}/{last[0]}/{MANIFEST}"
            private = f"gs://{last[0]}/{MANIFEST}"
            target = self.work / "pulled"
            for key, manifest, jobs, what in (
                ("pull_jobs1", public, 1, "public manifest URL"),
                ("pull_jobs8", public, 8, "public manifest URL"),
                ("pull_gs_jobs8", private, 8, "gs:// manifest"),
            ):

                def pull(manifest: str = manifest, jobs: int = jobs) -> Sample:
                    return run(
                        self.pull_cmd(manifest, jobs, target),
                        log,
                        child_env(**server.env(last[0])),
                    )

                figure = repeat(
                    self.plan.build_repeats,
                    pull,
                    before=lambda: shutil.rmtree(target, ignore_errors=True),
                )
                self.results.figures[f"{key}_mbps"] = round(size / figure.seconds, 1)
                row = self.record(
                    f"{key}_s",
                    figure,
                    "sync",
                    f"pull {self.plan.months} months, {what}, --jobs {jobs}",
                    f"{size / figure.seconds:,.0f} MB/s",
                )
                if key == "pull_jobs8":
                    rows["pull"] = row
            shutil.rmtree(target, ignore_errors=True)
            for direction in ("push", "pull"):
                ratio = (
                    self.results.figures[f"{direction}_jobs8_mbps"]
                    / self.results.figures[f"{direction}_jobs1_mbps"]
                )
                self.results.figures[f"{direction}_jobs8_over_jobs1"] = round(ratio, 2)
                rows[direction].note = f"jobs 8 / jobs 1 = {ratio:.2f}"
            server.empty_bucket(last.pop())

            # The full layout, pushed once (untimed), then pushed and compared again: no-ops.
            bucket = next(buckets)
            server.create_bucket(bucket)
            env = child_env(**server.env(bucket))
            first = run([*self.push_cmd(full), "--jobs", "8"], log, env)
            self.echo(f"  sync: full layout pushed in {first.seconds:.0f} s (setup, untimed)")
            noop_push = repeat(self.plan.repeats, lambda: run(self.push_cmd(full), log, env))
            self.record(
                "noop_push_s",
                noop_push,
                "sync",
                f"no-op push, {2 * layout.entries} files unchanged",
            )
            status: list[str | Path] = [
                BIN / "iqb",
                "cache",
                "status",
                "--manifest",
                f"gs://{bucket}/{MANIFEST}",
                "--artifacts",
                full,
            ]
            noop_status = repeat(self.plan.repeats, lambda: run(status, log, env))
            self.record(
                "noop_status_s",
                noop_status,
                "sync",
                f"status --manifest, {2 * layout.entries} files unchanged",
                rss_key="noop_status_rss_mb",
            )
            # The same comparison without drawing a 4,900-row table (docs/performance.md).
            noop_json = repeat(self.plan.repeats, lambda: run([*status, "--json"], log, env))
            self.record(
                "noop_status_json_s", noop_json, "sync", "status --manifest --json, same files"
            )

    def sync_with_latency(self, delay: float = 0.030) -> None:
        """Push and pull through a proxy adding ``delay`` per request each way.

        On loopback, ``--jobs`` only buys CPU; with a real round trip per
        request, parallel transfers hide the waits. Same files as the loopback rows.
        """
        source = self.work / "sync-window"  # linked by sync()
        size = mb(source / CACHE_DIR)
        target = self.work / "pulled-latency"
        log = self.log("sync-latency")
        with gcs.fake_gcs_with_latency(self.log("fake-gcs-latency"), delay) as server:
            for jobs in (1, 8):
                bucket = f"iqb-latency-{jobs}"
                server.create_bucket(bucket)
                env = child_env(**server.env(bucket))

                def push(jobs: int = jobs, env: dict[str, str] = env) -> Sample:
                    shutil.rmtree(source / STATE, ignore_errors=True)
                    return run([*self.push_cmd(source), "--jobs", str(jobs)], log, env)

                pushed = repeat(1, push)  # the bucket then holds the files for the pulls
                self.results.figures[f"push_latency_jobs{jobs}_mbps"] = round(
                    size / pushed.seconds, 1
                )
                self.record(
                    f"push_latency_jobs{jobs}_s",
                    pushed,
                    "sync",
                    f"push {self.plan.months} months, {delay * 1000:.0f} ms latency "
                    f"each way, --jobs {jobs}",
                    f"{size / pushed.seconds:,.0f} MB/s",
                )
                manifest = f"{server.url}/{bucket}/{MANIFEST}"

                def pull(
                    manifest: str = manifest, jobs: int = jobs, env: dict[str, str] = env
                ) -> Sample:
                    return run(self.pull_cmd(manifest, jobs, target), log, env)

                pulled = repeat(
                    self.plan.build_repeats,
                    pull,
                    before=lambda: shutil.rmtree(target, ignore_errors=True),
                )
                self.results.figures[f"pull_latency_jobs{jobs}_mbps"] = round(
                    size / pulled.seconds, 1
                )
                self.record(
                    f"pull_latency_jobs{jobs}_s",
                    pulled,
                    "sync",
                    f"pull {self.plan.months} months, {delay * 1000:.0f} ms latency "
                    f"each way, --jobs {jobs}",
                    f"{size / pulled.seconds:,.0f} MB/s",
                )
                server.empty_bucket(bucket)
            shutil.rmtree(target, ignore_errors=True)
        for direction in ("push", "pull"):
            ratio = (
                self.results.figures[f"{direction}_latency_jobs8_mbps"]
                / self.results.figures[f"{direction}_latency_jobs1_mbps"]
            )
            self.results.figures[f"{direction}_latency_jobs8_over_jobs1"] = round(ratio, 2)
            self.results.rows[
                -1 if direction == "pull" else -2
            ].note = f"{direction} jobs 8 / jobs 1 = {ratio:.2f}"

    def pull_cmd(self, manifest: str, jobs: int, target: Path) -> list[str | Path]:
        """``iqb cache pull`` of a manifest served over plain http on loopback."""
        return [
            BIN / "iqb",
            "cache",
            "pull",
            manifest,
            "--jobs",
            str(jobs),
            "--allow-http",
            "--artifacts",
            target,
        ]

    def push_cmd(self, root: Path) -> list[str | Path]:
        """``iqb sync push`` of ``root``, blind to a ``.env`` in the checkout (a real bucket)."""
        return [
            BIN / "iqb",
            "sync",
            "push",
            "--artifacts",
            root,
            "--env-file",
            self.work / "no-such.env",
        ]


def dbt_missing() -> str | None:
    """Why the dbt project cannot be benchmarked yet, or None."""
    if not (REPO / "dbt_project" / "dbt_project.yml").is_file():
        return "no dbt project (dbt_project/dbt_project.yml) in this checkout"
    return None


def sync_missing() -> str | None:
    """Why the sync commands cannot be benchmarked yet, or None."""
    for cmd in (["sync", "push", "--help"], ["cache", "pull", "--help"]):
        try:
            run([BIN / "iqb", *cmd], Path("/dev/null"))
        except StepFailed:
            return f"`iqb {' '.join(cmd[:-1])}` is not available in this checkout"
    return None


def main_run(
    plan: Plan, work: Path, results: Results, echo: Callable[[str], None], sections: tuple[str, ...]
) -> None:
    """Every selected section, in order; one that cannot run says why and the rest go on."""
    bench = Bench(plan, work, results, echo)
    bench.check_disk()
    bench.synthesise()
    steps: list[tuple[str, Callable[[], None], Callable[[], str | None]]] = [
        ("build", bench.floor_and_baseline, lambda: None),
        ("build", bench.build, dbt_missing),
        ("extract", bench.extract, lambda: None),
        ("sync", bench.sync, sync_missing),
        ("sync", bench.sync_with_latency, sync_missing),
    ]
    for section, step, missing in steps:
        if section not in sections:
            continue
        why = missing()
        if why is None:
            try:
                step()
                continue
            except StepFailed as err:
                why = str(err)
        name = f"{section}: {step.__name__}"
        results.unavailable[name] = why.splitlines()[0]
        echo(f"  {name}: NOT MEASURED: {why}")
