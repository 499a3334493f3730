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

from extract.cache.store import LEFT_OUT_COLUMN, template_text
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


def reader(ds: Dataset) -> exp.Select:
    """The SELECT over the raw table that the grouping query reads from."""
    inner = parsed(ds).args["from_"].this
    assert isinstance(inner, exp.Subquery) and isinstance(inner.this, exp.Select)
    return inner.this


@pytest.mark.parametrize("ds", DATASETS, ids=lambda d: d.name)
def test_output_columns_are_the_schema_in_order_then_the_left_out_count(ds: Dataset) -> None:
    assert [e.alias_or_name for e in parsed(ds).expressions] == [
        *ds.schema.names,
        LEFT_OUT_COLUMN,
    ]


@pytest.mark.parametrize("ds", DATASETS, ids=lambda d: d.name)
def test_keys_read_their_source_fields_and_group_and_order_by_them(ds: Dataset) -> None:
    tree = parsed(ds)
    by_alias = {e.alias_or_name: e for e in reader(ds).expressions}
    for key in ds.keys:
        assert by_alias[key].this.sql("bigquery") == KEY_SOURCE_FIELDS[key], key
    assert [e.sql("bigquery") for e in tree.expressions[: len(ds.keys)]] == list(ds.keys)
    assert [g.sql("bigquery") for g in tree.args["group"].expressions] == list(ds.keys)
    assert [o.this.sql("bigquery") for o in tree.args["order"].expressions] == list(ds.keys)
    [table] = list(tree.find_all(exp.Table))
    assert table.sql("bigquery").strip("`") == ds.source_table


@pytest.mark.parametrize("ds", DATASETS, ids=lambda d: d.name)
def test_every_percentile_reads_its_metric_at_its_offset(ds: Dataset) -> None:
    by_alias = {e.alias_or_name: e.this for e in parsed(ds).expressions}
    fields = {e.alias_or_name: e.this.sql("bigquery") for e in reader(ds).expressions}
    for metric in ds.metrics:
        field, _ = METRIC_FIELDS[metric]
        assert fields[metric] == field
        for p in PERCENTILES:
            node = by_alias[f"{metric}_p{p}"]
            assert isinstance(node, exp.Bracket) and isinstance(node.this, exp.ApproxQuantiles)
            # only valid measurements: IF(valid, metric, NULL), whose NULLs the quantile skips
            assert node.this.this.sql("bigquery") == f"IF(valid, {metric}, NULL)"
            assert node.this.expression.sql() == "100"
            assert int(node.expressions[0].name) == quantile_offset(metric, p), (metric, p)
    assert by_alias["sample_count"].sql("bigquery") == "COUNTIF(valid)"
    assert by_alias[LEFT_OUT_COLUMN].sql("bigquery") == "COUNTIF(NOT valid)"
    # the polarity convention itself: latency and loss labels are inverted
    assert quantile_offset("latency", 95) == 5 and quantile_offset("download", 95) == 95


@pytest.mark.parametrize("ds", DATASETS, ids=lambda d: d.name)
def test_rows_with_a_null_key_are_left_out_and_non_finite_metrics_are_not_valid(
    ds: Dataset,
) -> None:
    where = reader(ds).args["where"].sql("bigquery")
    valid = {e.alias_or_name: e.this for e in reader(ds).expressions}["valid"].sql("bigquery")
    for key in ds.keys:
        assert f"NOT {KEY_SOURCE_FIELDS[key]} IS NULL" in where, key
    for metric in ds.metrics:
        field, _ = METRIC_FIELDS[metric]
        assert f"NOT {field} IS NULL" in where
        if metric == "loss":
            assert re.search(rf"{re.escape(field)} BETWEEN 0 AND 1", valid)
        else:
            assert f"NOT IS_NAN({field})" in valid and f"NOT IS_INF({field})" in valid
            assert f"{field} >= 0" in valid
    assert "IS_NAN" not in where and "valid" not in where
