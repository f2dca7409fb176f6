"""Keeping secrets out of text: signed-URL query values and API keys.

A GCS V4 signed URL is a bearer credential until it expires, so anything
that prints one (repr, log line, exception) shows only scheme, host and path.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_MASK = "***"


def redact_url(url: str) -> str:
    """`https://host/path` with the query (credential, signature) removed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if not parts.scheme and not parts.netloc:
        return parts.path or "<url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    suffix = "?" + _MASK if parts.query else ""
    return f"{parts.scheme}://{host}{parts.path}{suffix}"


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Remove every occurrence of each secret (ignored when too short to be one)."""
    for secret in secrets:
        if len(secret) >= 6 and secret in text:
            text = text.replace(secret, _MASK)
    return text
