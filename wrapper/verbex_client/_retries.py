"""Pure retry decisions: what to retry, and how long to wait first.

No I/O and no clock reads here, so the sync and async clients share it and
tests drive it directly with fixed inputs.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable, Mapping

RETRYABLE_STATUSES = frozenset({408, 409, 429})
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0


def is_retryable_status(status_code: int) -> bool:
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from `Retry-After` (delta-seconds or HTTP date) or `retry-after-ms`.

    `now` is the current Unix time, passed in so the HTTP-date form is testable.
    Unusable or negative values give None.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = -1.0
        if 0 <= value < float("inf"):
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
        return max(seconds, 0.0)
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, inf
        return None
    return seconds


def backoff_delay(
    retries_done: int,
    retry_after: float | None = None,
    *,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number `retries_done + 1`.

    The server's hint wins (capped at 60 s); otherwise 0.5 s doubling up to
    8 s, minus up to 25 % jitter so a fleet of clients does not retry in step.
    """
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    base = min(INITIAL_BACKOFF * (2.0**retries_done), MAX_BACKOFF)
    return base * (1.0 - 0.25 * jitter())
