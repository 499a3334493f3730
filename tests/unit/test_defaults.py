"""Every default is written once, in extract/defaults.py: the CLI, the library, the dbt
project and the docs agree with it.

Docs cannot import a constant, so where they state a default this test reads the
number back and compares it; a change to extract/defaults.py that forgets a doc fails here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from extract import defaults
from extract.cli import app
from extract.extraction.engines.bigquery import BigQueryEngine
from extract.extraction.engines.duckdb import DuckDBEngine
from extract.extraction.runner import RunOptions
from extract.sync.audit import verify
from extract.sync.bucket import BucketPlan
from extract.sync.compare import compare
from extract.sync.pull import pull
from extract.sync.push import push
from extract.sync.push_plan import plan_push
from extract.sync.remote import Transfer
from tests.conftest import REPO
from tests.unit.test_cli_upstream import commands

# The commands whose jobs wait on the network; every other --jobs works this machine.
NETWORK_COMMANDS = {"sync push", "cache pull"}


def cli_defaults() -> dict[tuple[str, str], Any]:
    """(command, parameter) -> default, for every command of `iqb`."""
    return {
        (name, p.name): p.default
        for name, cmd in commands(typer.main.get_command(app)).items()
        for p in cmd.params
        if p.name
    }


def test_every_jobs_option_follows_the_one_rule_and_says_it() -> None:
    jobs = {
        name: p
        for name, cmd in commands(typer.main.get_command(app)).items()
        for p in cmd.params
        if p.name == "jobs"
    }
    assert set(jobs) >= {*NETWORK_COMMANDS, "extract run", "cache verify"}
    for name, param in jobs.items():
        want = defaults.NETWORK_JOBS if name in NETWORK_COMMANDS else defaults.LOCAL_JOBS
        assert param.default == want, name
        assert defaults.JOBS_RULE in (getattr(param, "help", None) or ""), name


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("timeout", defaults.READ_TIMEOUT_S),
        ("retry_deadline", defaults.RETRY_DEADLINE_S),
        ("keep_days", defaults.KEEP_DAYS),
        ("keep_last", defaults.KEEP_LAST),
        ("soft_delete_days", defaults.SOFT_DELETE_DAYS),
        ("memory_gb", defaults.MEMORY_GB),
        ("maximum_bytes_billed", defaults.MAXIMUM_BYTES_BILLED),
        ("price_per_tib", defaults.PRICE_PER_TIB_USD),
        ("job_timeout", defaults.JOB_TIMEOUT_S),
    ],
)
def test_every_command_option_reads_its_default(param: str, value: float | str) -> None:
    found = {name: d for (name, p), d in cli_defaults().items() if p == param}
    assert found, param
    assert all(d == value for d in found.values()), found


@pytest.mark.parametrize(
    ("function", "param", "value"),
    [
        (push, "jobs", defaults.NETWORK_JOBS),
        (pull, "jobs", defaults.NETWORK_JOBS),
        (plan_push, "jobs", defaults.NETWORK_JOBS),
        (compare, "jobs", defaults.LOCAL_JOBS),
        (verify, "jobs", defaults.LOCAL_JOBS),
        (push, "keep_days", defaults.KEEP_DAYS),
        (push, "keep_last", defaults.KEEP_LAST),
        (DuckDBEngine, "memory_limit_gb", defaults.MEMORY_GB),
        (BigQueryEngine, "job_timeout", defaults.JOB_TIMEOUT_S),
        (BigQueryEngine, "maximum_bytes_billed", 50 * 2**30),
    ],
)
def test_library_functions_read_the_same_defaults(
    function: Callable[..., object], param: str, value: float
) -> None:
    assert inspect.signature(function).parameters[param].default == value


def test_library_objects_read_the_same_defaults() -> None:
    assert RunOptions().jobs == defaults.LOCAL_JOBS
    assert Transfer() == Transfer(
        defaults.CONNECT_TIMEOUT_S, defaults.READ_TIMEOUT_S, defaults.RETRY_DEADLINE_S
    )
    assert BucketPlan("b").soft_delete_days == defaults.SOFT_DELETE_DAYS


def stated(path: Path, pattern: str) -> list[float]:
    """Every number ``pattern`` (one group) finds in ``path``; at least one."""
    found = [float(m) for m in re.findall(pattern, path.read_text())]
    assert found, f"{path.relative_to(REPO)} no longer says {pattern!r}: update this test"
    return found


@pytest.mark.parametrize(
    ("doc", "pattern", "value"),
    [
        ("README.md", r"`--keep-days` \((\d+)\)", defaults.KEEP_DAYS),
        ("README.md", r"`--keep-last` \((\d+)\)", defaults.KEEP_LAST),
        ("docs/sync.md", r"`--keep-days` \((\d+)\)", defaults.KEEP_DAYS),
        ("docs/sync.md", r"`--keep-last` \((\d+)\)", defaults.KEEP_LAST),
        ("README.md", r"`--jobs (\d+)` at", defaults.NETWORK_JOBS),
        ("README.md", r"--jobs N in parallel \(default (\d+)\)", defaults.LOCAL_JOBS),
        ("docs/sync.md", r"`--jobs`, default (\d+) for push and pull", defaults.NETWORK_JOBS),
        ("docs/sync.md", r"(\d+) where the work is this machine's", defaults.LOCAL_JOBS),
        ("docs/sync.md", r"connect/read timeout \((\d+) s /", defaults.CONNECT_TIMEOUT_S),
        ("docs/sync.md", r"`--timeout` (\d+) s\)", defaults.READ_TIMEOUT_S),
        ("docs/sync.md", r"`--retry-deadline` \((\d+) s;", defaults.RETRY_DEADLINE_S),
        ("README.md", r"--memory-gb 4 .*\(default (\d+)\)", defaults.MEMORY_GB),
        ("docs/extract.md", r"`--memory-gb`\*\* \(default (\d+),", defaults.MEMORY_GB),
        ("README.md", r"\| `--price-per-tib` \| `([\d.]+)` \|", defaults.PRICE_PER_TIB_USD),
        ("README.md", r"\| `--job-timeout` \| `(\d+)` \|", defaults.JOB_TIMEOUT_S),
        ("docs/bigquery.md", r"`--job-timeout` \(default (\d+) h\)", defaults.JOB_TIMEOUT_S / 3600),
        ("docs/iqb_score.md", r"`iqb_percentile`, default (\d+)", defaults.IQB_PERCENTILE),
        ("docs/report.md", r"`iqb_percentile`, default (\d+)", defaults.IQB_PERCENTILE),
    ],
)
def test_a_default_a_doc_states_is_the_code_s(doc: str, pattern: str, value: float) -> None:
    assert set(stated(REPO / doc, pattern)) == {value}


def test_the_byte_cap_the_docs_state_is_the_code_s() -> None:
    readme = re.findall(
        r"\| `--maximum-bytes-billed` \| `(\w+)` \|", (REPO / "README.md").read_text()
    )
    assert readme == [defaults.MAXIMUM_BYTES_BILLED]
    spaced = defaults.MAXIMUM_BYTES_BILLED.replace("GiB", " GiB")
    assert f"default\n  {spaced};" in (REPO / "docs" / "bigquery.md").read_text()


def test_the_dbt_project_scores_at_the_same_default_percentile() -> None:
    """dbt reads its var, not Python: the default declared under the project's `vars:`
    (no macro or model writes a fallback of its own), the one repeat dbt needs where it
    renders dbt_project.yml before its vars (the score views' contract), and the model
    descriptions must agree."""
    text = (REPO / "dbt_project" / "dbt_project.yml").read_text()
    project = yaml.safe_load(text)
    assert (project.get("vars") or {}).get("iqb_percentile") == defaults.IQB_PERCENTILE
    fallbacks = [
        (f.name, n)
        for f in [*(REPO / "dbt_project").rglob("*.sql"), *(REPO / "dbt_project").rglob("*.yml")]
        if "target" not in f.relative_to(REPO / "dbt_project").parts and f.name != "dbt_project.yml"
        for n in re.findall(r"var\(\s*['\"]iqb_percentile['\"]\s*,([^)]*)\)", f.read_text())
    ]
    assert fallbacks == [], "the default of iqb_percentile is dbt_project.yml's vars: only"
    repeated = re.findall(r"var\('iqb_percentile', (\d+)\) \| int == (\d+)", text)
    assert repeated and {int(n) for pair in repeated for n in pair} == {defaults.IQB_PERCENTILE}
    described = [
        n
        for f in [*(REPO / "dbt_project").rglob("*.yml"), *(REPO / "dbt_project").rglob("*.sql")]
        if "target" not in f.relative_to(REPO / "dbt_project").parts
        for n in re.findall(r"iqb_percentile`?,? \(?default (\d+)", f.read_text())
    ]
    assert described and {int(n) for n in described} == {defaults.IQB_PERCENTILE}
