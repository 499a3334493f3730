"""The BigQuery engine's pure parts: SQL rendering, option parsing, sizes, retry policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import sqlglot
from google.api_core import exceptions as api_exceptions

from extract.cache.templates import template_text
from extract.datasets import DATASETS, SOURCE_TABLES, Dataset
from extract.extraction.engines import EngineError
from extract.extraction.engines.bigquery import (
    format_bytes,
    on_demand_cost,
    parse_bytes,
    parse_source_tables,
    render_sql,
)
from extract.retry import is_transient, is_transient_http
from tests.bigquery.bq_harness import extract_on_bigquery, write_config

DOWNLOADS, UPLOADS = SOURCE_TABLES["downloads"], SOURCE_TABLES["uploads"]


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_rendered_sql_is_the_template_without_comments(dataset: Dataset) -> None:
    template = template_text(dataset)
    sql, read = render_sql(template, {})
    assert sqlglot.parse_one(sql, read="bigquery") == sqlglot.parse_one(template, read="bigquery")
    assert "--" not in sql and "@start_date" in sql and "@end_date" in sql
    assert read == [dataset.source_table]


def test_an_override_rewrites_only_its_table() -> None:
    down = next(d for d in DATASETS if d.direction == "downloads")
    up = next(d for d in DATASETS if d.direction == "uploads")
    tables = {DOWNLOADS: "my-proj.mirror.downloads"}
    sql, read = render_sql(template_text(down), tables)
    assert "FROM `my-proj.mirror.downloads`" in sql and DOWNLOADS not in sql
    assert read == ["my-proj.mirror.downloads"]
    assert render_sql(template_text(up), tables)[1] == [UPLOADS]


def test_source_tables_parse() -> None:
    assert parse_source_tables("downloads=p-1.d.t, uploads=`p.e.u`") == {
        DOWNLOADS: "p-1.d.t",
        UPLOADS: "p.e.u",
    }
    with pytest.raises(EngineError) as err:
        parse_source_tables("down=p.d.t,uploads=just_a_table")
    assert "'down=p.d.t': expected downloads=" in str(err.value)
    assert "'just_a_table' is not a fully qualified table" in str(err.value)  # both at once
    with pytest.raises(EngineError, match="nothing given"):
        parse_source_tables(" , ")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("50GiB", 50 * 2**30),
        ("1.5TB", 1_500_000_000_000),
        ("123", 123),
        ("2 mib", 2 * 2**20),
        ("1TiB", 2**40),
    ],
)
def test_sizes_parse(text: str, size: int) -> None:
    assert parse_bytes(text) == size


def test_a_fraction_of_a_byte_is_refused_not_rounded() -> None:
    with pytest.raises(EngineError, match="positive whole number of bytes"):
        parse_bytes("1.5")
    assert parse_bytes("1.5KiB") == 1536  # whole: fine


@pytest.mark.parametrize(
    "text", ["", "abc", "5XB", "5ib", "-1GiB", "0", "1.5", "0.3B", "1.0000001KiB"]
)
def test_bad_sizes_are_named(text: str) -> None:
    with pytest.raises(EngineError, match=repr(text).replace("\\", "\\\\")):
        parse_bytes(text)


def test_sizes_and_cost_read_in_binary_units() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 2**30) == "3.00 GiB"
    assert format_bytes(5 * 2**50) == "5120.00 TiB"
    assert on_demand_cost(2**40, 6.25) == 6.25


def test_what_is_retried() -> None:
    rate_limited = api_exceptions.Forbidden("quota", errors=[{"reason": "rateLimitExceeded"}])
    for exc in (
        api_exceptions.ServiceUnavailable("x"),
        api_exceptions.TooManyRequests("x"),
        api_exceptions.InternalServerError("x"),
        api_exceptions.BadGateway("x"),
        api_exceptions.GatewayTimeout("x"),
        rate_limited,
    ):
        assert is_transient_http(exc) and is_transient(exc), exc
    for permanent in (
        api_exceptions.BadRequest("x"),
        api_exceptions.NotFound("x"),
        api_exceptions.Forbidden("x", errors=[{"reason": "accessDenied"}]),
        requests.exceptions.SSLError("x"),
    ):
        assert not is_transient(permanent), permanent
    # A dropped connection is retried during a run, but not by the up-front check.
    dropped = requests.exceptions.ConnectionError("refused")
    assert is_transient(dropped) and not is_transient_http(dropped)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--source-table", "sideways=p.d.t", "'sideways=p.d.t': expected downloads="),
        ("--maximum-bytes-billed", "lots", "'lots' is not a size"),
    ],
)
def test_bad_options_fail_before_any_credentials_are_needed(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    config = write_config(tmp_path / "pipeline.yaml", "[country]")
    code, output = extract_on_bigquery(
        config,
        tmp_path / "a",
        option,
        value,
    )
    assert code == 2
    assert message in " ".join(output.split())
    assert not (tmp_path / "a").exists()
