"""Which query an entry was made by: the template hash, ours and upstream's.

``template_hash`` is taken over the template's SQL tokens, not its text, so a
changed comment, blank line or indentation leaves every cached entry current;
only a change to the query itself makes entries stale. Upstream m-lab/iqb
records the SHA-256 of its own template text instead; the hashes it is known
to write are listed in ``extract/extraction/templates/upstream_hashes.json`` (with where
they come from), and an entry carrying one of them for its dataset is as
current as ours: the same query, computed by M-Lab.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from typing import Any

from sqlglot.tokens import Tokenizer

from extract.datasets import Dataset

UPSTREAM_HASHES = "upstream_hashes.json"
# Hashes of our own template texts from before template_hash was taken over tokens.
PREVIOUS_HASHES = "previous_hashes.json"


def template_text(dataset: Dataset) -> str:
    return (
        resources.files("extract")
        .joinpath("extraction", "templates", dataset.template_name)
        .read_text()
    )


def normalised_sql(sql: str) -> str:
    """The template's tokens, one space apart: no comments, no layout, keywords upper-case.

    Only token texts go in (quotes put back on strings and quoted names), not
    sqlglot's token type names, so a sqlglot upgrade cannot make every entry stale.
    """
    parts = []
    for t in Tokenizer(dialect="bigquery").tokenize(sql):
        kind = t.token_type.name
        if kind == "STRING":
            parts.append("'" + t.text.replace("'", "\\'") + "'")
        elif kind == "IDENTIFIER":
            parts.append(f"`{t.text}`")
        elif kind in ("VAR", "NUMBER", "PARAMETER"):
            parts.append(t.text)
        else:
            parts.append(t.text.upper())
    return " ".join(parts)


@functools.cache
def template_hash(dataset: Dataset) -> str:
    """SHA-256 of the normalised template (stats.json ``template_hash`` of our entries)."""
    return hashlib.sha256(normalised_sql(template_text(dataset)).encode()).hexdigest()


def _listed(name: str) -> dict[str, frozenset[str]]:
    doc = json.loads(
        resources.files("extract").joinpath("extraction", "templates", name).read_text()
    )
    return {dataset: frozenset(values) for dataset, values in doc["hashes"].items()}


@functools.cache
def upstream_hashes() -> dict[str, frozenset[str]]:
    return _listed(UPSTREAM_HASHES)


@functools.cache
def previous_hashes() -> dict[str, frozenset[str]]:
    """Our text hashes of the same queries, before the switch to normalised SQL: entries
    made then stay current (re-running them on BigQuery would cost money for nothing)."""
    return _listed(PREVIOUS_HASHES)


def is_current(dataset: Dataset, stats: dict[str, Any]) -> bool:
    """Whether ``stats`` was written by today's query for ``dataset`` (ours or upstream's)."""
    recorded = stats.get("template_hash")
    return (
        recorded == template_hash(dataset)
        or recorded in upstream_hashes().get(dataset.name, frozenset())
        or recorded in previous_hashes().get(dataset.name, frozenset())
    )
