"""The build section: floor, pandas baseline, dbt build, no-op, direct, one new month,
the README's questions and rescoring."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from bench import explore, page, questions
from bench.core import BenchCore
from bench.harness import Figure, Sample, child_env, repeat, run
from bench.report import Row
from extract.paths import ENV_ARTIFACTS, ArtifactPaths


class BuildSection(BenchCore):
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

    def build(self) -> None:
        """Full ``dbt build`` over the window and a no-op; on that database the marts' SQL
        run directly, the README's questions and every country rescored (API and page);
        then one new month on top of it."""
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
        self.direct(build)
        repeats = max(3, self.plan.repeats)
        self.questions(repeats)
        api_seconds = self.rescore(repeats)
        self.page_rescore(repeats, api_seconds)

        incremental, period = self.one_new_month(
            self.window, self.plan.build_repeats, lambda: run(self.dbt("build"), log, env)
        )
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

    def direct(self, build: Figure) -> None:
        """The marts' compiled SQL run once in one DuckDB process: the limit of a build."""
        direct = repeat(
            self.plan.repeats,
            lambda: run(
                [
                    self.python,
                    "-m",
                    "bench.steps",
                    "direct",
                    self.window,
                    "--target",
                    self.work / "dbt-target",
                ],
                self.log("direct"),
            ),
        )
        ratio = build.seconds / direct.seconds
        self.results.figures["build_over_direct"] = round(ratio, 2)
        self.record(
            "direct_s",
            direct,
            "build",
            "direct: the marts' compiled SQL, one DuckDB process, same files, no dbt/tests",
            note=f"build/direct = {ratio:.2f}",
            rss_key="direct_rss_mb",
        )
        shutil.rmtree(self.window / "direct", ignore_errors=True)

    def questions(self, repeats: int) -> None:
        """The README's questions on the built database, on a tables copy, and in pandas."""
        database = ArtifactPaths(self.window).database
        tables = questions.tables_copy(database, self.work / "questions-tables.duckdb")
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

    def rescore(self, repeats: int) -> float:
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
        return float(took["percentile"])

    def page_rescore(self, repeats: int, api_seconds: float) -> None:
        """The same in the HTML report, in headless Chromium (bench/page.py)."""
        try:
            took = page.page_rescore(self.window, self.work, max(repeats, 5))
        except Exception as err:  # the page is one figure: the other sections still run
            why = (str(err) or type(err).__name__).splitlines()[0]
            self.results.unavailable["build: page_rescore"] = why
            self.echo(f"  build: page_rescore: NOT MEASURED: {err}")
            return
        score, redraw = took["score_ms"] / 1000, took["redraw_ms"] / 1000
        self.results.figures.update(
            rescore_page_s=round(score, 4),
            rescore_page_redraw_s=round(redraw, 4),
            rescore_page_over_api=round(score / api_seconds, 2),
        )
        for seconds, step, note in (
            (
                score,
                f"same at p{explore.PERCENTILE} in the HTML report (Chromium): IQB.benchRescore",
                f"{took['rows']:,.0f} country rows in memory; / API (which also opens "
                f"the database and builds a DataFrame) = {score / api_seconds:.2f}",
            ),
            (
                redraw,
                "the report's percentile selector changed: rescored and redrawn",
                "map, rankings and country view",
            ),
        ):
            self.results.rows.append(
                Row("build", step, seconds, None, None, "", max(repeats, 5), note)
            )
            self.echo(f"  build: {step}: {seconds * 1000:.0f} ms")
