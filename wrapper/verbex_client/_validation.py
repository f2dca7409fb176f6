"""Argument checks run before any request: wrong type → TypeError, wrong value → ValueError."""

from __future__ import annotations

import unicodedata

MAX_CALL_ID_LENGTH = 512
MIN_EXPIRY_MINUTES = 1
MAX_EXPIRY_MINUTES = 7 * 24 * 60  # GCS V4 signed URLs live at most 7 days
DEFAULT_EXPIRY_MINUTES = 10


def check_call_id(call_id: object) -> str:
    if not isinstance(call_id, str):
        raise TypeError(f"call_id must be a str, not {type(call_id).__name__}")
    if not call_id:
        raise ValueError("call_id must not be empty")
    if len(call_id) > MAX_CALL_ID_LENGTH:
        raise ValueError(f"call_id must be at most {MAX_CALL_ID_LENGTH} characters, got {len(call_id)}")
    if call_id != call_id.strip():
        raise ValueError("call_id must not start or end with whitespace")
    # isprintable() rules out every control character at C speed; only other ids are scanned.
    if not call_id.isprintable() and any(unicodedata.category(ch) == "Cc" for ch in call_id):
        raise ValueError("call_id must not contain control characters")
    return call_id


def check_expires_in_minutes(value: object) -> int:
    # bool is an int subclass; True minutes is a bug, not a duration.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expires_in_minutes must be an int, not {type(value).__name__}")
    if not MIN_EXPIRY_MINUTES <= value <= MAX_EXPIRY_MINUTES:
        raise ValueError(
            f"expires_in_minutes must be from {MIN_EXPIRY_MINUTES} to {MAX_EXPIRY_MINUTES} "
            f"(7 days, the signed-URL maximum), got {value}"
        )
    return value


def check_max_retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_retries must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"max_retries must be >= 0, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    # "no" and 0 are truthy or falsy by accident; a flag must be said as True or False.
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {type(value).__name__}")
    return value


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value
