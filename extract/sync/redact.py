"""Secrets out of every message and log: URL user-info and token-like query parameters.

A manifest URL may carry credentials (``https://user:secret@host/...``, a
signed URL's ``X-Goog-Signature``, an ``access_token=``). Messages, progress
lines and ``state/logs/*.jsonl`` repeat URLs, so each of them passes through
:func:`redact`, which works on any text that contains URLs.
"""

from __future__ import annotations

import re

MASK = "***"
# Query parameter names whose values are credentials (lower-case; matched as substrings
# for the last group, e.g. x-goog-signature, x-amz-security-token).
_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:[\w.-]*(?:token|signature|secret|password|passwd|credential|key|sig|auth)"
    r"[\w.-]*)=)([^&#\s'\"]*)"
)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s'\"]+)@")


def redact(text: str) -> str:
    """``text`` with the user-info of every URL and secret query values replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}{MASK}", text)
