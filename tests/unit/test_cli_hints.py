"""Every hint a command prints names an option that exists, on that command.

A hint that names a flag the command lacks (``--allow-http`` on a command without
it) sends a new user nowhere. Two checks: every ``--option`` written in a string
under extract/ is an option of some ``iqb`` command (or of the other tool the
text names: dbt, gcloud, git); and each command that reads a manifest, refused a
plain-http one, names only options it has. Plus what ``extract run`` does when
its remote cannot be used: the embedded engine computes the entries instead,
and says so once.
"""

from __future__ import annotations

import ast
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from extract.cli import app
from tests.conftest import REPO

OPTION_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Options of the other tools the messages tell users to run, by tool.
OTHER_TOOLS = {
    "dbt": {"--full-refresh", "--select", "--vars", "--project-dir", "--profiles-dir"},
    "gcloud storage buckets": {
        "--member",
        "--role",
        "--soft-delete-duration",
        "--uniform-bucket-level-access",
    },
    "git": {"--porcelain", "--short", "--untracked-files"},
    "iqb (every command)": {"--help", "--version"},
    "iqb report --html (the report's own prefix argument)": {"--prefix"},
}


def command_options() -> dict[str, set[str]]:
    """``"cache pull"`` -> every option spelling it takes (``--x``, ``--no-x``, ``-j``)."""
    found: dict[str, set[str]] = {}

    def walk(cmd: Any, path: list[str]) -> None:  # a click command or group
        if isinstance(subs := getattr(cmd, "commands", None), dict):  # a group
            for name, sub in subs.items():
                walk(sub, [*path, name])
            return
        found[" ".join(path)] = {
            o for p in cmd.params for o in (*p.opts, *getattr(p, "secondary_opts", ()))
        }

    walk(typer.main.get_command(app), [])
    return found


def strings_in(path: Path) -> list[str]:
    return [
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_every_option_a_message_names_exists() -> None:
    known = set().union(*command_options().values(), *OTHER_TOOLS.values())
    unknown = sorted(
        f"{path.relative_to(REPO)}: {option}"
        for path in (REPO / "extract").rglob("*.py")
        for text in strings_in(path)
        for option in OPTION_RE.findall(text)
        if option not in known
    )
    assert unknown == []


def test_an_option_named_after_its_command_is_that_commands() -> None:
    """``iqb sample --months``, ``iqb extract run --refresh-stale``: each on its command."""
    options = command_options()
    commands = sorted(options, key=len, reverse=True)
    wrong = []
    for path in (REPO / "extract").rglob("*.py"):
        for text in strings_in(path):
            for m in re.finditer(r"iqb ((?:[a-z-]+ ?){1,2})([^`\n]*)", text):
                words = m.group(1).split()
                name = next((c for c in commands if c.split() == words[: len(c.split())]), None)
                if name is None:
                    continue
                rest = " ".join(words[len(name.split()) :]) + " " + m.group(2)
                wrong += [
                    f"{path.relative_to(REPO)}: iqb {name} {o}"
                    for o in OPTION_RE.findall(rest)
                    if o not in options[name]
                ]
    assert wrong == []


@pytest.mark.parametrize(
    "args",
    [
        ["cache", "pull", "{url}"],
        ["cache", "status", "--manifest", "{url}"],
        ["cache", "verify", "{url}"],
        ["extract", "run", "--remote", "{url}", "--dry-run"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_refused_plain_http_manifest_names_options_of_its_command(
    args: list[str], artifacts: Path, tmp_path: Path
) -> None:
    url = "http://127.0.0.1:9/state/manifest.json"
    config = tmp_path / "p.yaml"
    config.write_text(
        'version: 0\nmatrix:\n  dates:\n    - {start: "2024-10-01", end: "2024-11-01"}\n'
        "  granularities: [country]\n"
    )
    if args[0] == "extract":
        args = [*args, "--config", str(config)]
    result = CliRunner().invoke(app, [a.replace("{url}", url) for a in args])
    assert "plain http is refused" in result.output, result.output
    named = set(OPTION_RE.findall(result.output))
    assert "--allow-http" in named
    assert named <= command_options()[" ".join(args[:2])], result.output


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the socket is: nothing listens


@pytest.mark.parametrize(
    "remote",
    ["http://127.0.0.1:{port}/m.json", "https://127.0.0.1:{port}/m.json"],
    ids=["plain http", "nothing listening"],
)
def test_an_unusable_remote_falls_back_to_the_local_engine_and_says_so_once(
    remote: str, artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "p.yaml"
    config.write_text(
        'version: 0\nmatrix:\n  dates:\n    - {start: "2024-10-01", end: "2024-11-01"}\n'
        "  granularities: [country, country_asn]\n"
    )
    runner = CliRunner()
    result = runner.invoke(app, ["sample", "--config", str(config), "--rows", "3000"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("IQB_REMOTE_MANIFEST", remote.format(port=closed_port()))
    result = runner.invoke(app, ["extract", "run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert said.count("remote not used") == 1, said
    assert "remote not used for 4 entries" in said, said
    assert "computed by the local engine from the raw data instead" in said
    assert "--no-remote" in said and "failed" not in said
    assert set(OPTION_RE.findall(said)) <= command_options()["extract run"]
    stats = [json.loads(p.read_text()) for p in artifacts.rglob("stats.json")]
    assert len(stats) == 4 and all(s["engine"] == "duckdb" for s in stats)
