"""The `verbex_client` logger; `VERBEX_LOG=debug|info` adds a stderr handler.

Log lines carry method, path, status, elapsed time and attempt, never the
API key, headers, or a signed URL's query.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

logger = logging.getLogger("verbex_client")

_configured = False


def setup_from_env() -> None:
    """Apply VERBEX_LOG once per process (idempotent, cheap when unset)."""
    global _configured
    if _configured:
        return
    _configured = True
    level = {"debug": logging.DEBUG, "info": logging.INFO}.get(os.environ.get("VERBEX_LOG", "").lower())
    if level is None:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s %(levelname)s %(name)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


class _RedactQueryFilter(logging.Filter):
    """Strips query strings from httpx's and urllib3's own request log lines (they hold URL
    signatures): whole URLs, and urllib3's request targets (`/path?query`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ._redact import redact_url

        if record.args and isinstance(record.args, tuple):
            record.args = tuple(_redacted(a, redact_url) for a in record.args)
        return True


def _redacted(arg: object, redact_url: Callable[[str], str]) -> object:
    text = str(arg)
    if "?" not in text:
        return arg
    if "://" in text:
        return redact_url(text)
    if text.startswith("/"):
        return text.split("?", 1)[0] + "?***"
    return arg


def install_redaction() -> None:
    """Called on client construction: httpx logs full URLs (signatures included) at INFO."""
    # Filters apply to records of the logger itself, not of its children: name each one.
    for name in ("httpx", "httpcore", "urllib3.connectionpool"):
        lib = logging.getLogger(name)
        if not any(isinstance(f, _RedactQueryFilter) for f in lib.filters):
            lib.addFilter(_RedactQueryFilter())
