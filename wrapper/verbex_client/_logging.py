"""The `verbex_client` logger; `VERBEX_LOG=debug|info` adds a stderr handler.

Log lines carry method, path, status, elapsed time and attempt, never the
API key, headers, or a signed URL's query.
"""

from __future__ import annotations

import logging
import os

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
    """Strips query strings from httpx's own request log lines (they hold URL signatures)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ._redact import redact_url

        if record.args and isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(a)) if "://" in str(a) and "?" in str(a) else a for a in record.args
            )
        return True


def install_redaction() -> None:
    """Called on client construction: httpx logs full URLs (signatures included) at INFO."""
    for name in ("httpx", "httpcore"):
        lib = logging.getLogger(name)
        if not any(isinstance(f, _RedactQueryFilter) for f in lib.filters):
            lib.addFilter(_RedactQueryFilter())
