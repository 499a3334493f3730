"""Application Default Credentials: missing or unusable ones are one clear error that says
how to fix it, before anything runs or is written, and no secret is ever printed or logged.

Unusable credentials are real key files whose token endpoint, on loopback, refuses
them; a network failure (a closed loopback port, a host name that does not resolve,
a closed proxy) is said to be one, not a credentials problem: google-auth's refresh
fails here without reaching the network either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.bigquery.bq_harness import extract_on_bigquery, write_config
from tests.servers import free_port

FIX = ("gcloud auth application-default login", "GOOGLE_APPLICATION_CREDENTIALS")


@pytest.fixture
def no_adc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine with no credentials anywhere google-auth looks (GCE probing is off)."""
    for var in (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "BIGQUERY_EMULATOR_HOST",
        "IQB_BQ_PROJECT",
        "GOOGLE_CLOUD_PROJECT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def run_bigquery(root: Path) -> tuple[int, str]:
    config = write_config(root / "pipeline.yaml", "[country]")
    return extract_on_bigquery(
        config,
        root / "artifacts",
    )


def assert_one_clear_error(code: int, output: str, root: Path, network: bool = False) -> None:
    """One error, nothing written; the credentials fix, or for a network failure, not it."""
    assert code == 2, output
    assert output.count("error:") == 1, output
    text = " ".join(output.split())
    if network:
        assert "network failure" in text and "check the network connection" in text, output
        assert not any(fix in text for fix in FIX) and "could not be used" not in text, output
    else:
        assert all(fix in text for fix in FIX), output
    assert not (root / "artifacts").exists()  # nothing written, not even a lock


def service_account_key(path: Path, token_uri: str) -> str:
    """A real service-account key file whose token endpoint is ``token_uri``; its PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "iqb-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "extract@iqb-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return pem


@contextlib.contextmanager
def refusing_token_endpoint() -> Iterator[str]:
    """A loopback token endpoint that refuses every key, as Google's does a revoked one."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}'
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


def test_no_credentials_at_all(no_adc: Path) -> None:
    code, output = run_bigquery(no_adc)
    assert_one_clear_error(code, output, no_adc)
    assert "no usable Google credentials" in " ".join(output.split())


def test_credentials_file_that_does_not_exist(
    no_adc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(no_adc / "missing-key.json"))
    code, output = run_bigquery(no_adc)
    assert_one_clear_error(code, output, no_adc)
    assert "missing-key.json" in "".join(output.split())


def test_refused_service_account_key_never_leaks(
    no_adc: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A key the token endpoint refuses: the credentials are the problem, and the fix says so."""
    with refusing_token_endpoint() as token_uri:
        pem = service_account_key(no_adc / "key.json", token_uri)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(no_adc / "key.json"))
        caplog.set_level(logging.DEBUG)
        code, output = run_bigquery(no_adc)
    assert_one_clear_error(code, output, no_adc)
    assert "could not be used" in " ".join(output.split())
    body = pem.splitlines()[1]  # a line of the key itself
    for text in (output, caplog.text):
        assert body not in text and "PRIVATE KEY" not in text


@pytest.mark.parametrize(
    ("token_uri", "said"),
    [
        ("http://127.0.0.1:{port}/token", "the connection was refused"),
        ("https://iqb-offline-test.invalid/token", "a host name could not be resolved (DNS)"),
    ],
    ids=["closed port", "unresolvable host"],
)
def test_a_valid_key_without_network_is_a_network_failure(
    no_adc: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    token_uri: str,
    said: str,
) -> None:
    """Off the network, the key is fine: say what failed, not `gcloud auth` again."""
    pem = service_account_key(no_adc / "key.json", token_uri.format(port=free_port()))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(no_adc / "key.json"))
    caplog.set_level(logging.DEBUG)
    t0 = time.monotonic()
    code, output = run_bigquery(no_adc)
    assert time.monotonic() - t0 < 30
    assert_one_clear_error(code, output, no_adc, network=True)
    assert said in " ".join(output.split()), output
    body = pem.splitlines()[1]
    for text in (output, caplog.text):
        assert body not in text and "PRIVATE KEY" not in text


def test_unusable_user_credentials_never_leak(
    no_adc: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = {"refresh_token": "1//refresh-SECRET-4c1f", "client_secret": "client-SECRET-9e2a"}
    path = no_adc / "gcloud" / "application_default_credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "iqb.apps", **secrets}))
    # google-auth always sends user credentials to Google's token endpoint: route that
    # through a closed loopback proxy so the refresh fails here, unresolved and offline.
    for var in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{free_port()}")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    caplog.set_level(logging.DEBUG)
    code, output = run_bigquery(no_adc)
    assert_one_clear_error(code, output, no_adc, network=True)
    assert "the proxy could not be reached" in " ".join(output.split())
    for secret in secrets.values():
        assert secret not in output and secret not in caplog.text
