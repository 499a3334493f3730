"""The scale section: the build over the whole history (13, 52 and 205 months)."""

from __future__ import annotations

from pathlib import Path

from bench import synth
from bench.core import BenchCore
from bench.harness import Sample, child_env, repeat, run
from extract.paths import ENV_ARTIFACTS


class ScaleSection(BenchCore):
    def scale(self) -> None:
        """Full build, no-op, one new month and peak RSS over 13, 52 and 205 months.

        13 months is the window itself, with the build section's figures when it
        ran in this run (else measured here); the longer histories link its files
        (no byte copied) and add older months: 52 at full size
        (``work/scale-52``), and every month of the manifest with the older
        ones at ``older_scale`` (``work/scale-205``, linked from ``work/full``,
        which the sync section reuses). Each figure is the median of as many
        runs as its 13-month counterpart: a long build run once against a
        median of 3 compared one run's noise with a median.
        """
        periods = synth.manifest_entries()
        window_keys = [e.key for es in synth.latest(periods, self.plan.months).values() for e in es]
        long_root = self.work / "scale-52"
        synth.link_tree(self.window, long_root, window_keys)
        long = synth.synth(long_root, self.plan.long_months, self.plan.seed, self.plan.scale)
        layout = self.layout()
        layout_periods = (
            synth.latest(periods, self.plan.layout_months) if self.plan.layout_months else periods
        )
        shape_root = self.work / "scale-205"
        synth.link_tree(
            self.work / "full", shape_root, [e.key for es in layout_periods.values() for e in es]
        )
        self.results.data.update(
            {
                "scale_52_months": self.plan.long_months,
                "scale_52_mb": round(long.bytes / 1e6, 1),
                "scale_205_months": len(layout_periods),
                "scale_205_mb": round(layout.bytes / 1e6, 1),
            }
        )
        self.echo(
            f"  scale: {self.plan.long_months} months ({long.bytes / 1e6:,.0f} MB), "
            f"{len(layout_periods)} months ({layout.bytes / 1e6:,.0f} MB)"
        )
        try:
            f = self.results.figures
            if "incremental_s" in f:  # the build section measured the window in this run
                for key, same in (
                    ("scale_13_build_s", "build_s"),
                    ("scale_13_rss_mb", "build_rss_mb"),
                    ("scale_13_noop_s", "noop_build_s"),
                    ("scale_13_incremental_s", "incremental_s"),
                ):
                    f[key] = f[same]
                self.echo("  scale: 13 months: the build section's figures")
            else:
                self.scale_at(
                    "13", self.window, f"{self.plan.months} months", noop=True, incremental=True
                )
            self.scale_at(
                "52", long_root, f"{self.plan.long_months} months", noop=False, incremental=True
            )
            self.scale_at(
                "205",
                shape_root,
                f"{len(layout_periods)} months, the older at {self.plan.older_scale:g} size",
                noop=True,
                incremental=False,
            )
        finally:  # the long histories' marts are gigabytes: keep only their cache
            for root in (long_root, shape_root):
                self.reset_window(root=root)
        for key, a, b in (
            ("scale_52_over_13_build", "scale_52_build_s", "scale_13_build_s"),
            ("scale_205_over_13_build", "scale_205_build_s", "scale_13_build_s"),
            ("scale_52_over_13_rss", "scale_52_rss_mb", "scale_13_rss_mb"),
            ("scale_205_over_13_rss", "scale_205_rss_mb", "scale_13_rss_mb"),
            ("scale_205_over_13_noop", "scale_205_noop_s", "scale_13_noop_s"),
            ("scale_52_over_13_incremental", "scale_52_incremental_s", "scale_13_incremental_s"),
        ):
            f[key] = round(f[a] / f[b], 2)
        self.results.rows[-1].note = (
            f"x13: build {f['scale_205_over_13_build']}, RSS {f['scale_205_over_13_rss']}, "
            f"no-op {f['scale_205_over_13_noop']}; {self.results.rows[-1].note}"
        )

    def scale_at(self, label: str, root: Path, what: str, noop: bool, incremental: bool) -> None:
        """One history: a full build (time, peak RSS), then a no-op and/or one new month."""
        env = child_env(**{ENV_ARTIFACTS: str(root)})
        log = self.log(f"scale-{label}")
        times = self.plan.build_repeats

        def build() -> Sample:
            return run(self.dbt("build"), log, env)

        full = repeat(times, build, before=lambda: self.reset_window(root=root))
        self.record(
            f"scale_{label}_build_s",
            full,
            "scale",
            f"dbt build, {what}",
            note=self.dbt_split(full.all_seconds[-1]),
            rss_key=f"scale_{label}_rss_mb",
        )
        if noop:
            quiet = repeat(times, build)
            self.record(
                f"scale_{label}_noop_s",
                quiet,
                "scale",
                f"no-op dbt build, {what}",
                note=self.dbt_split(quiet.all_seconds[-1]),
            )
        if incremental:
            more, _ = self.one_new_month(root, times, build)
            self.record(
                f"scale_{label}_incremental_s",
                more,
                "scale",
                f"dbt build after adding 1 month, {what}",
                note=self.dbt_split(more.all_seconds[-1]),
            )
