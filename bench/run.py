"""What ``make bench`` measures, section by section, and in what order.

One run of ``python -m bench`` synthesises (or reuses) the data, then
measures every figure side by side in the same process tree, so that ratios
compare like with like on a shared machine. Each section either fills its
figures or says, in ``unavailable``, why it could not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.core import Plan
from bench.harness import BIN, REPO, StepFailed, run
from bench.report import Results
from bench.sections.build import BuildSection
from bench.sections.extract import ExtractSection
from bench.sections.scale import ScaleSection
from bench.sections.sync import SyncSection


class Bench(BuildSection, ScaleSection, ExtractSection, SyncSection):
    """One run: every section's steps over the shared folders and results."""


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
        ("scale", bench.scale, dbt_missing),
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
