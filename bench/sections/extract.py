"""The extract section: the embedded engine on one month of raw rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from bench.core import BenchCore
from bench.harness import BIN, Figure, Sample, repeat, run
from extract import defaults
from extract.extraction.sample.generate import calibration_table
from extract.paths import ArtifactPaths


class ExtractSection(BenchCore):
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
