"""Secrets never printed: URL user-info and token-like query values are masked."""

from __future__ import annotations

import pytest

from extract.sync.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:secret@host/a/m.json", "https://***@host/a/m.json"),
        ("reading http://tok@127.0.0.1:9/x failed", "reading http://***@127.0.0.1:9/x failed"),
        (
            "https://h/x?alt=media&access_token=abc&X-Goog-Signature=ff00",
            "https://h/x?alt=media&access_token=***&X-Goog-Signature=***",
        ),
        ("https://h/x?key=AIza123#frag", "https://h/x?key=***#frag"),
        ("gs://bucket/state/manifest.json", "gs://bucket/state/manifest.json"),  # nothing secret
        ("https://h/x?generation=12&alt=media", "https://h/x?generation=12&alt=media"),
        ("'https://a:b@h/1' and 'https://c:d@h/2'", "'https://***@h/1' and 'https://***@h/2'"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_an_email_address_in_a_message_is_left_alone() -> None:
    assert redact("ask iqb@measurementlab.net") == "ask iqb@measurementlab.net"
