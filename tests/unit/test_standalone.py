"""The repo stands on its own: no file points at a design document outside it."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO


def tracked(*left_out: str) -> list[str]:
    """The files git tracks, but those under the ``left_out`` folders."""
    return subprocess.run(
        ["git", "ls-files", "--", *(f":!{folder}" for folder in left_out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def test_no_tracked_file_refers_to_an_outside_design_document() -> None:
    files = tracked()
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
    files = tracked("extract/results/html/vendor", "tests/fixtures")
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
    files = tracked("extract/results/html/vendor")
    marker = re.compile(rb"^(<{7}|>{7}) ", re.M)
    offenders = [
        f for f in files if (REPO / f).is_file() and marker.search((REPO / f).read_bytes())
    ]
    assert offenders == []
