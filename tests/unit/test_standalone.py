"""The repo stands on its own: no file points at a design document outside it."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO


def test_no_tracked_file_refers_to_an_outside_design_document() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(files) > 50
    needle = "DESIGN" + ".md"  # spelled apart so that this file does not match itself
    offenders = [
        f for f in files if (REPO / f).is_file() and needle.encode() in (REPO / f).read_bytes()
    ]
    assert offenders == []


def test_the_contracts_the_code_relies_on_are_in_docs() -> None:
    for doc, must in (
        ("datasets.md", ["Polarity", "cache/v1/", '"v": 0', "sha256"]),
        ("iqb_score.md", ["video conferencing", "score_status"]),
        ("dbt.md", ["Write-audit-publish"]),
    ):
        text = (REPO / "docs" / doc).read_text()
        assert all(m in text for m in must), doc


def test_no_code_or_doc_points_at_an_issue_number() -> None:
    """A comment says the reason for a choice: an issue number means nothing to a reader
    without the tracker, and the tracker is not part of the repo."""
    files = subprocess.run(
        ["git", "ls-files", "--", ":!extract/results/html/vendor", ":!tests/fixtures"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # "issue" and a number, or "#" and a number in brackets; spelled apart not to match here
    pattern = re.compile(r"\bissues? ?" + r"#?\d+\b|\(" + r"#\d+\)", re.IGNORECASE)
    offenders = []
    for f in files:
        path = REPO / f
        if not path.is_file() or b"\0" in (data := path.read_bytes()):
            continue  # binary files carry no prose
        text = data.decode("utf-8", errors="replace")
        offenders += [f"{f}: {m[0]}" for m in pattern.finditer(text)]
    assert offenders == []


def test_no_tracked_file_holds_a_merge_conflict() -> None:
    """A conflict resolved in haste leaves its markers in a doc that no other test reads."""
    files = subprocess.run(
        ["git", "ls-files", "--", ":!extract/results/html/vendor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    marker = re.compile(rb"^(<{7}|>{7}) ", re.M)
    offenders = [
        f for f in files if (REPO / f).is_file() and marker.search((REPO / f).read_bytes())
    ]
    assert offenders == []
