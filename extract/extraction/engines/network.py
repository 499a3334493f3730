"""Telling a network failure from a credentials or API problem (the BigQuery engine).

google-auth and the Google API clients wrap a host that cannot be reached in the
same exceptions as an endpoint that answers with an error; the fix differs
(check the network, not sign in again), so the exception chain is read here.
"""

from __future__ import annotations

import re
import socket

import requests

NETWORK_HELP = (
    "check the network connection (and HTTPS_PROXY, if one is set); nothing was sent to BigQuery"
)


def network_failure(err: BaseException) -> str | None:
    """What failed on the network when ``err``, or an error it was raised from, is a
    failure to reach a host (a name that does not resolve, a refused or timed-out
    connection, a proxy that cannot be reached), else None.

    google-auth wraps such a failure in the same TransportError as a token endpoint
    that answers nonsense: without this, a laptop off the network is told to run
    ``gcloud auth`` again.
    """
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and all(cause is not c for c in chain):
        chain.append(cause)
        nxt = cause.__cause__ or cause.__context__
        if nxt is None and cause.args and isinstance(cause.args[0], BaseException):
            nxt = cause.args[0]  # google-auth passes the wrapped error as its argument
        cause = nxt
    text = " ".join(f"{type(c).__name__}: {c}" for c in chain)
    # the most telling first: a proxy in the way, then the name, then the connection
    if any(isinstance(c, requests.exceptions.ProxyError) for c in chain) or "ProxyError" in text:
        return "the proxy could not be reached"
    if any(isinstance(c, socket.gaierror) for c in chain) or re.search(
        r"NameResolutionError|Failed to resolve|Name or service not known|"
        r"Temporary failure in name resolution|nodename nor servname",
        text,
    ):
        return "a host name could not be resolved (DNS)"
    if any(isinstance(c, ConnectionRefusedError) for c in chain) or "Connection refused" in text:
        return "the connection was refused"
    if any(isinstance(c, requests.exceptions.Timeout | TimeoutError) for c in chain):
        return "the connection timed out"
    if any(isinstance(c, requests.exceptions.ConnectionError | ConnectionError) for c in chain):
        return "the connection failed"
    return None


def signin_unreachable(network: str, detail: str) -> str:
    """The message for credentials that could not be checked because the network failed."""
    return (
        "network failure: Google's sign-in service, which checks the credentials before "
        f"any query, was not reached: {network} ({detail}); {NETWORK_HELP}"
    )
