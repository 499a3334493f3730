"""Template SQL on the syntax tree: both engines rename tables here, never by string replace."""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp

from extract.extraction.engines import EngineError


def swap_tables(template: str, rename: Callable[[str], str]) -> tuple[exp.Expr, list[str]]:
    """Parse a BigQuery template and give each table the name ``rename`` returns.

    Returns the rewritten tree and the new names, in order of appearance.
    """
    try:
        tree = sqlglot.parse_one(template, read="bigquery")
    except sqlglot.errors.ParseError as err:
        raise EngineError(f"template does not parse as BigQuery SQL: {err}") from err
    names: list[str] = []
    for table in list(tree.find_all(exp.Table)):
        name = rename(".".join(p.name for p in table.parts))
        names.append(name)
        table.replace(exp.to_table(f"`{name}`", dialect="bigquery"))
    return tree, names
