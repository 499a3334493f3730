"""The sync section: push and pull against fake-gcs-server, no-op push and status."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from bench import gcs, synth
from bench.core import BenchCore, mb
from bench.harness import BIN, Sample, child_env, repeat, run
from bench.report import Row
from extract.paths import CACHE_DIR, MANIFEST, STATE


class SyncSection(BenchCore):
    def sync(self) -> None:
        """Push and pull of the window's cache, then no-op push/status over the full layout."""
        periods = synth.manifest_entries()
        keys = [e.key for es in synth.latest(periods, self.plan.months).values() for e in es]
        source = self.work / "sync-window"  # the window's cache alone (no database), linked
        shutil.rmtree(source / STATE, ignore_errors=True)
        synth.link_tree(self.window, source, keys)
        size = mb(source / CACHE_DIR)
        full = self.work / "full"
        layout = self.layout()
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
