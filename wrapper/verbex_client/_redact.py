"""Keeping secrets out of text: signed-URL query values and API keys.

A GCS V4 signed URL is a bearer credential until it expires, so anything
that prints one (repr, log line, exception) shows only scheme, host and path.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

_MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter values (page sizes, flags) are not secrets and would mask ordinary text


def redact_url(url: str) -> str:
    """`https://host/path` with the query (credential, signature) and any user:password removed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    if not parts.scheme and not parts.netloc:
        return parts.path or "<url>"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    suffix = "?" + _MASK if parts.query else ""
    return f"{parts.scheme}://{host}{parts.path}{suffix}"


def query_secrets(url: str) -> tuple[str, ...]:
    """The query string of `url` and each of its values (raw and decoded), to scrub from text."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return ()
    if not query:
        return ()
    values = [query]
    for raw in query.split("&"):
        values.append(raw.partition("=")[2])
    values += [value for _, value in parse_qsl(query, keep_blank_values=True)]
    return tuple(values)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Remove every occurrence of each secret (ignored when too short to be one), longest first."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, _MASK)
    return text
