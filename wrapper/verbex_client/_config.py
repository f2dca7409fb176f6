"""Client options: explicit arguments, then environment, then defaults."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs
import httpx

from ._exceptions import ConfigurationError
from ._validation import check_max_retries
from ._version import __version__

API_KEY_ENV = "VERBEX_API_KEY"
BASE_URL_ENV = "VERBEX_BASE_URL"
DEFAULT_BASE_URL = "https://api.verbex.ai"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
# httpx's default pool of 100 connections degrades badly under asyncio
# contention above ~10 in-flight requests; 20 keeps latency flat (see benchmarks/).
POOL_SIZE = 20  # connections per pool (API, storage); also async gates and download threads
DEFAULT_LIMITS = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)

USER_AGENT = f"verbex-client/{__version__} python/{platform.python_version()} httpx/{httpx.__version__}"


@attrs.frozen
class ClientOptions:
    """Resolved, validated options shared by a client and its `with_options` copies."""

    api_key: str = attrs.field(repr=False)
    base_url: str
    timeout: httpx.Timeout
    max_retries: int
    default_headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent on every API request."""
        return {
            "User-Agent": USER_AGENT,
            **self.default_headers,
            "Authorization": f"Bearer {self.api_key}",
        }


def _check_timeout(timeout: object) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"timeout must be seconds (int or float) or an httpx.Timeout, not {type(timeout).__name__}"
        )
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    return httpx.Timeout(float(timeout))


def _check_base_url(base_url: str) -> str:
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}, got {base_url!r}"
        )
    return base_url.strip().rstrip("/")


def resolve_options(
    *,
    api_key: str | None,
    base_url: str | None,
    timeout: float | httpx.Timeout,
    max_retries: int,
    default_headers: Mapping[str, str] | None,
) -> ClientOptions:
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if key is not None and not isinstance(key, str):
        raise TypeError(f"api_key must be a str, not {type(key).__name__}")
    if not key or not key.strip():
        raise ConfigurationError(
            f"No API key: pass api_key=... or set the {API_KEY_ENV} environment variable."
        )
    if any(ch in key for ch in "\r\n") or key != key.strip():
        raise ConfigurationError("api_key contains whitespace or line breaks; check how it was loaded")
    headers = dict(default_headers or {})
    for name in headers:
        if name.lower() == "authorization":
            raise ConfigurationError("default_headers must not set Authorization; pass api_key instead")
    return ClientOptions(
        api_key=key,
        base_url=_check_base_url(base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL),
        timeout=_check_timeout(timeout),
        max_retries=check_max_retries(max_retries),
        default_headers=headers,
    )
