"""Every SQL template against extract/datasets.py, on the syntax tree.

The twelve templates are written by hand; this checks what they must agree on:
the output columns in schema order, the key fields they read, the source table,
every OFFSET against its percentile label (latency and loss inverted: the
polarity convention of docs/datasets.md), the metric each quantile reads, and
the GROUP BY / ORDER BY keys.
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from extract.cache.store import template_text
from extract.datasets import (
    DATASETS,
    KEY_SOURCE_FIELDS,
    METRIC_FIELDS,
    PERCENTILES,
    Dataset,
    quantile_offset,
)


def parsed(ds: Dataset) -> exp.Select:
    tree = sqlglot.parse_one(template_text(ds), read="bigquery")
    assert isinstance(tree, exp.Select)
    return tree


@pytest.mark.parametrize("ds", DATASETS, ids=lambda d: d.name)
def test_output_columns_are_the_schema_in_order(ds: Dataset) -> None:
    assert [e.alias_or_name for e in parsed(ds).expressions] == ds.schema.names


@pytest.mark.parametrize("ds", DATASETS, ids=lambda d: d.name)
def test_keys_read_their_source_fields_and_group_and_order_by_them(ds: Dataset) -> None:
    tree = parsed(ds)
    by_alias = {e.alias_or_name: e for e in tree.expressions}
    for key in ds.keys:
        assert by_alias[key].this.sql("bigquery") == KEY_SOURCE_FIELDS[key], key
    assert [g.sql("bigquery") for g in tree.args["group"].expressions] == list(ds.keys)
    assert [o.this.sql("bigquery") for o in tree.args["order"].expressions] == list(ds.keys)
    [table] = list(tree.find_all(exp.Table))
    assert table.sql("bigquery").strip("`") == ds.source_table


@pytest.mark.parametrize("ds", DATASETS, ids=lambda d: d.name)
def test_every_percentile_reads_its_metric_at_its_offset(ds: Dataset) -> None:
    by_alias = {e.alias_or_name: e.this for e in parsed(ds).expressions}
    for metric in ds.metrics:
        field, _ = METRIC_FIELDS[metric]
        for p in PERCENTILES:
            node = by_alias[f"{metric}_p{p}"]
            assert isinstance(node, exp.Bracket) and isinstance(node.this, exp.ApproxQuantiles)
            assert node.this.this.sql("bigquery") == field
            assert node.this.expression.sql() == "100"
            assert int(node.expressions[0].name) == quantile_offset(metric, p), (metric, p)
    # the polarity convention itself: latency and loss labels are inverted
    assert quantile_offset("latency", 95) == 5 and quantile_offset("download", 95) == 95


@pytest.mark.parametrize("ds", DATASETS, ids=lambda d: d.name)
def test_rows_with_a_null_key_or_a_non_finite_metric_are_left_out(ds: Dataset) -> None:
    where = parsed(ds).args["where"].sql("bigquery")
    for key in ds.keys:
        assert f"NOT {KEY_SOURCE_FIELDS[key]} IS NULL" in where, key
    for metric in ds.metrics:
        field, _ = METRIC_FIELDS[metric]
        assert f"NOT {field} IS NULL" in where
        if metric == "loss":
            assert re.search(rf"{re.escape(field)} BETWEEN 0 AND 1", where)
        else:
            assert f"NOT IS_NAN({field})" in where and f"NOT IS_INF({field})" in where
            assert f"{field} >= 0" in where
