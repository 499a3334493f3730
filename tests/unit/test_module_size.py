"""No module of extract/ or bench/ is over 400 lines without a reason written at its top."""

from __future__ import annotations

import ast

from tests.conftest import REPO

LIMIT = 400
FOLDERS = ("extract", "bench")


def test_long_modules_say_why_at_the_top() -> None:
    unexplained = []
    paths = sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))
    assert any(p.parts[-2] == "bench" for p in paths)  # the rule does see bench/
    for path in paths:
        rel = path.relative_to(REPO).as_posix()
        text = path.read_text()
        if "node_modules" in path.parts or text.count("\n") <= LIMIT:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if f"over {LIMIT} lines" not in doc.split("\n\n")[0].lower():
            unexplained.append(f"{rel}: {text.count(chr(10))} lines")
    assert not unexplained, (
        f"split these, or say in the docstring's first paragraph why each is over {LIMIT} "
        "lines:\n" + "\n".join(unexplained)
    )
