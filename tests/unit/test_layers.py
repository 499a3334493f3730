"""The stages of extract/ import one way: no cycle, no import from a lower layer back up.

Data flows extraction -> cache -> transform -> results -> sync (docs/architecture.md).
The imports follow that order but for one place: cache/ is the store every stage
reads or writes (its layout, its atomic writes), so the stage that fills it imports
it like the others do, and it stands below them all. The layers, lowest first:

    shared     extract/*.py (paths, defaults, datasets, months, retry): none of the stages
    cache      the shared modules
    extraction, transform, results   cache and the shared modules, never each other
    sync       all of the above
    cli        everything (it only parses options and prints)

Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast

from tests.conftest import REPO

PACKAGE = REPO / "extract"
SHARED = "shared"
LAYER = {SHARED: 0, "cache": 1, "extraction": 2, "transform": 2, "results": 2, "sync": 3, "cli": 4}


def _place(parts: list[str]) -> str:
    """The layer of ``extract.<parts>``: its folder, or shared for a top-level module."""
    folder = parts[0] if parts else ""
    return folder if (PACKAGE / folder).is_dir() and folder else SHARED


def _imported(tree: ast.AST) -> set[str]:
    """The layers of extract/ that a module's imports name."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [a.name.split(".") for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module.split(".")
            modules = [[*base, a.name] for a in node.names] if base == ["extract"] else [base]
        else:
            continue
        found |= {_place(m[1:]) for m in modules if m[0] == "extract" and len(m) > 1}
    return found


def _edges() -> dict[str, set[str]]:
    """Each module of extract/ (its path) -> the layers it imports, other than its own."""
    edges = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        rel = path.relative_to(PACKAGE)
        own = _place(list(rel.parts[:-1]) or [rel.stem])
        if rel.parts == ("__init__.py",):
            own = SHARED
        edges[f"{own}: {rel.as_posix()}"] = _imported(ast.parse(path.read_text())) - {own}
    return edges


def test_every_folder_of_extract_has_a_layer() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(LAYER) - {SHARED}, "give a new folder its layer here and in the docs"


def test_no_import_runs_up_or_sideways() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in _edges().items()
        for target in sorted(targets)
        if LAYER[target] >= LAYER[module.split(":")[0]]
    ]
    assert len(_edges()) > 50  # the walk does see the package
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_rule_catches_an_import_back_up() -> None:
    tree = ast.parse("def f():\n    from extract.sync.pull import pull\nimport extract.defaults")
    assert _imported(tree) == {"sync", SHARED}
    assert _imported(ast.parse("from extract import results, paths")) == {"results", SHARED}
