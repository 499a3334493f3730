"""Which errors are worth retrying: the one classification of BigQuery's and the bucket's calls.

A transient error is the network dropping (a refused or reset connection, a
timeout, a response cut short) or a server saying "try again" (HTTP 408, 429
or 5xx; BigQuery also says it with a reason such as ``rateLimitExceeded`` in
a 403). Anything else is an answer, and retrying it only delays the error.

Three predicates, built from the same lists:

- :func:`is_transient_http`: the server said "try again". BigQuery's up-front
  checks retry only this: a host that cannot be reached should fail at once.
- :func:`is_transient`: that, or the network dropped; what a BigQuery job
  retries. A TLS failure is not retried: a bad certificate does not heal.
- :func:`is_transient_transfer`: what a bucket transfer retries (push, pull,
  GCS or plain https): a ``requests`` HTTP error by its status, a dropped
  connection (TLS failures included), or a Google API's 429/5xx.
"""

from __future__ import annotations

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Error reasons BigQuery gives to 5xx-like and rate-limit failures.
TRANSIENT_REASONS = frozenset({"rateLimitExceeded", "backendError", "internalError", "badGateway"})
TRANSIENT_API_ERRORS = (
    api_exceptions.TooManyRequests,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.ServiceUnavailable,
    api_exceptions.GatewayTimeout,
)
NETWORK_ERRORS = (
    ConnectionError,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    auth_exceptions.TransportError,
)


def is_transient_http(exc: BaseException) -> bool:
    """5xx and rate limits of a Google API (HTTP 429, or 403 with reason rateLimitExceeded)."""
    if isinstance(exc, TRANSIENT_API_ERRORS):
        return True
    errors = getattr(exc, "errors", None) or []
    return any(isinstance(e, dict) and e.get("reason") in TRANSIENT_REASONS for e in errors)


def is_transient(exc: BaseException) -> bool:
    """What a running extract retries: transient HTTP errors and dropped connections."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return is_transient_http(exc) or isinstance(exc, NETWORK_ERRORS)


def is_transient_transfer(exc: BaseException) -> bool:
    """What a push or pull retries: the network or the server hiccupped, not a definite answer."""
    if isinstance(exc, requests.HTTPError):
        return exc.response is not None and exc.response.status_code in TRANSIENT_STATUS
    return isinstance(exc, (*NETWORK_ERRORS, *TRANSIENT_API_ERRORS))
