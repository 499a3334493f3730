"""Retry classification has one home, extract/retry.py, used by BigQuery and the bucket.

(tests/bigquery/test_bigquery_units.py pins what a BigQuery job retries.)
"""

from __future__ import annotations

import re

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

from extract import retry
from extract.extraction.engines import bigquery
from extract.sync.remote import Transfer
from tests.conftest import REPO


def _http_error(status: int | None) -> requests.HTTPError:
    response = None
    if status is not None:
        response = requests.Response()
        response.status_code = status
    return requests.HTTPError("x", response=response)


# exception -> (is_transient_http, is_transient: a BigQuery job, is_transient_transfer: push/pull)
CASES = {
    "503": (api_exceptions.ServiceUnavailable("x"), True, True, True),
    "429": (api_exceptions.TooManyRequests("x"), True, True, True),
    "403 rateLimitExceeded": (
        api_exceptions.Forbidden("q", errors=[{"reason": "rateLimitExceeded"}]),
        True,
        True,
        False,
    ),
    "403": (
        api_exceptions.Forbidden("x", errors=[{"reason": "accessDenied"}]),
        False,
        False,
        False,
    ),
    "404": (api_exceptions.NotFound("x"), False, False, False),
    "refused": (requests.exceptions.ConnectionError("refused"), False, True, True),
    "reset": (ConnectionResetError(), False, True, True),
    "timeout": (requests.exceptions.ReadTimeout("slow"), False, True, True),
    "cut short": (requests.exceptions.ChunkedEncodingError("x"), False, True, True),
    "auth transport": (auth_exceptions.TransportError("x"), False, True, True),
    "tls": (requests.exceptions.SSLError("x"), False, False, True),
    "https 503": (_http_error(503), False, False, True),
    "https 408": (_http_error(408), False, False, True),
    "https 404": (_http_error(404), False, False, False),
    "https, no response": (_http_error(None), False, False, False),
    "a bug": (ValueError("x"), False, False, False),
}


@pytest.mark.parametrize("case", CASES)
def test_what_each_path_retries(case: str) -> None:
    exc, http, job, transfer = CASES[case]
    assert retry.is_transient_http(exc) is http
    assert retry.is_transient(exc) is job
    assert retry.is_transient_transfer(exc) is transfer


def test_bigquery_and_the_bucket_retry_with_these_predicates() -> None:
    assert Transfer().retry()._predicate is retry.is_transient_transfer
    assert bigquery.is_transient is retry.is_transient
    assert bigquery.is_transient_http is retry.is_transient_http


def test_no_other_module_classifies_errors() -> None:
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in sorted((REPO / "extract").rglob("*.py"))
        if path.name != "retry.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"def is_transient|TooManyRequests|rateLimitExceeded|\b50[234]\b", line)
    ]
    assert not found, "use extract/retry.py:\n" + "\n".join(found)
