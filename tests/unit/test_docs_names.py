"""Prose that cannot drift: what README.md, CONTRIBUTING.md and docs/*.md name exists.

Docs are read as instructions. A path that moved, a macro that was renamed, a
`make` target or an `iqb` option that no longer exists turns a page into a
trap for the next reader, and nothing else would notice. So every name in
backticks or in a shell block that looks like one of those is checked here
against the tree, the Makefile, the dbt macros and the CLI itself.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from extract.cli import app
from tests.conftest import REPO

PAGES = sorted(
    [REPO / "README.md", *(REPO / "docs").glob("*.md")]
    + ([REPO / "CONTRIBUTING.md"] if (REPO / "CONTRIBUTING.md").exists() else [])
)
TOP = {p.name for p in REPO.iterdir() if not p.name.startswith(".") or p.name == ".ci"}
# Trees that exist only after a run (artifacts/, dbt's target/), and their parts.
PRODUCED = (
    "artifacts/",
    "bench/work",
    "target/",
    "logs/",
    "marts/",
    "cache/",
    "state/",
    "report/",
    "raw/",
)


def _code_spans(text: str) -> Iterator[str]:
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    yield from re.findall(r"`([^`\n]+)`", text)


def _shell_lines(text: str) -> Iterator[str]:
    fence: str | None = None  # the language of the fenced block we are in
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip()[3:] or "text"
        elif fence in ("sh", "bash", "console", "text"):
            line = line.split(" # ")[0].strip()
            if line and not line.startswith("#"):
                yield line


def _repo_path(span: str) -> str | None:
    """The span as a path of the tree (the repo's, or dbt_project/'s as dbt names them)."""
    if any(c in span for c in "<>{}*$ |(),=") or span.startswith(("/", "http", "gs://", "~")):
        return None
    path = span.rstrip("/").removeprefix("./")
    head = path.split("/")[0]
    if head not in TOP or path.startswith(PRODUCED) or ("/" not in path and "." not in path):
        return None
    return path


def test_every_path_named_exists() -> None:
    missing = []
    for page in PAGES:
        for span in _code_spans(page.read_text()):
            path = _repo_path(span)
            if path and not any((base / path).exists() for base in (REPO, REPO / "dbt_project")):
                missing.append(f"{page.relative_to(REPO)}: `{span}`")
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_every_make_target_named_exists() -> None:
    targets = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), flags=re.M))
    missing = []
    for page in PAGES:
        text = page.read_text()
        for target in re.findall(r"`make ([a-z][\w-]*)", text) + [
            line.split()[1] for line in _shell_lines(text) if re.match(r"make [a-z]", line)
        ]:
            if target not in targets:
                missing.append(f"{page.relative_to(REPO)}: make {target}")
    assert not missing, "make targets named in the docs that the Makefile lacks:\n" + "\n".join(
        missing
    )


def test_every_macro_named_exists() -> None:
    defined = set()
    for sql in (REPO / "dbt_project").rglob("*.sql"):
        defined |= set(re.findall(r"{%-?\s*(?:macro|materialization)\s+(\w+)", sql.read_text()))
    missing = []
    for page in PAGES:
        text = page.read_text()
        named = re.findall(r"\bmacro `(\w+)", text) + re.findall(r"run-operation (\w+)", text)
        named += [s[:-2] for s in _code_spans(text) if re.fullmatch(r"[a-z]+_[a-z_]+\(\)", s)]
        missing += [f"{page.relative_to(REPO)}: {name}" for name in named if name not in defined]
    # a code span like `iqb_cache_files()` may also name a function the dbt plugin registers
    python = "\n".join(p.read_text() for p in (REPO / "extract").rglob("*.py"))
    missing = [m for m in missing if f'"{m.split(": ")[1]}"' not in python]
    assert not missing, "macros named in the docs that dbt_project lacks:\n" + "\n".join(missing)


def _iqb_invocations(text: str) -> Iterator[list[str]]:
    lines = list(_shell_lines(text)) + [s for s in _code_spans(text) if s.startswith("iqb ")]
    for line in lines:
        line = re.sub(r"^(\S+=\S+\s+)+", "", line)  # VAR=value prefixes
        words = line.replace("[", " ").replace("]", " ").split()
        if "|" in words or not words or not words[0].endswith("iqb"):
            continue
        try:
            yield shlex.split(" ".join(words[1:]))
        except ValueError:
            continue


def _resolve(argv: list[str]) -> tuple[Any, list[str]] | str:
    command = typer.main.get_command(app)
    rest = list(argv)
    while hasattr(command, "get_command") and rest and not rest[0].startswith("-"):
        sub = command.get_command(typer.Context(command), rest[0])
        if sub is None:
            return f"no command '{rest[0]}' under '{command.name}'"
        command, rest = sub, rest[1:]
    return command, rest


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_iqb_command_and_option_named_exists(page: Path) -> None:
    wrong = []
    for argv in _iqb_invocations(page.read_text()):
        resolved = _resolve(argv)
        if isinstance(resolved, str):
            wrong.append(f"iqb {' '.join(argv)}: {resolved}")
            continue
        command, rest = resolved
        known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        for word in rest:
            option = word.split("=")[0]
            if option.startswith("-") and option not in known | {"--help"}:
                wrong.append(f"iqb {' '.join(argv)}: no option {option} on '{command.name}'")
    assert not wrong, f"{page.name} names commands or options that do not exist:\n" + "\n".join(
        wrong
    )
