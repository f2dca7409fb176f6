"""Client options: explicit arguments, then environment, then defaults."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

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
        """Headers of the API's httpx clients; the transport adds `Authorization` to each request."""
        return {"User-Agent": USER_AGENT, **self.default_headers}

    @property
    def authorization(self) -> str:
        return f"Bearer {self.api_key}"

    @property
    def base_path(self) -> str:
        """The base URL's path ('' or '/prefix'), which every operation's path is appended to."""
        return urlsplit(self.base_url).path.rstrip("/")


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
    """An absolute http(s) URL with a host and a valid port, and no query, fragment or credentials."""
    from ._redact import redact_url

    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    text = base_url.strip()
    shown = redact_url(text)  # never echo a query or user:password
    parts: SplitResult | None = None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number 0-65535
        httpx.URL(text)
    except (ValueError, httpx.InvalidURL):
        parts = None  # raised below, outside this block, so nothing quoting the URL is chained
    if parts is None:
        raise ConfigurationError(f"base_url is not a valid URL: {shown!r}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Only the scheme is echoed: without a real one, the rest may be a key pasted by mistake.
        got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ConfigurationError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}, got {got}")
    if parts.query or parts.fragment or parts.username is not None or not text.isascii():
        raise ConfigurationError(
            f"base_url must be scheme://host[:port][/path] in ASCII, without query, fragment or "
            f"credentials, got {shown!r}"
        )
    return text.rstrip("/")


# A header-safe token: visible ASCII only (no space, control or non-ASCII character), so the
# key can never break a header line, fail to encode, or end up in an encoder's error text.
_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))
MIN_API_KEY_LENGTH = 8  # shorter strings cannot be told apart from ordinary text to scrub them
_HEADER_NAME_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def check_api_key(key: str) -> str:
    """The key as given, or ConfigurationError naming the rule it breaks (never the key)."""
    if not key.strip():
        raise ConfigurationError(
            f"No API key: pass api_key=... or set the {API_KEY_ENV} environment variable."
        )
    if key != key.strip() or any(ch in key for ch in "\r\n"):
        raise ConfigurationError("api_key contains whitespace or line breaks; check how it was loaded")
    if not _KEY_CHARS.issuperset(key):
        raise ConfigurationError(
            "api_key must be printable ASCII without spaces (a header-safe token); check how it was loaded"
        )
    if len(key) < MIN_API_KEY_LENGTH:
        raise ConfigurationError(f"api_key is too short: at least {MIN_API_KEY_LENGTH} characters")
    return key


def _check_headers(default_headers: Mapping[str, str] | None) -> dict[str, str]:
    """Header names must be tokens and values printable ASCII, so no request can fail to encode."""
    headers = dict(default_headers or {})
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("default_headers must map str to str")
        if not name or not _HEADER_NAME_CHARS.issuperset(name):
            raise ConfigurationError(f"default_headers: {name!r} is not a valid header name")
        if name.lower() == "authorization":
            raise ConfigurationError("default_headers must not set Authorization; pass api_key instead")
        if not all(" " <= ch <= "~" for ch in value):  # no control, line-break or non-ASCII character
            raise ConfigurationError(f"default_headers: the value of {name!r} must be printable ASCII")
    return headers


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
    return ClientOptions(
        api_key=check_api_key(key or ""),
        base_url=_check_base_url(base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL),
        timeout=_check_timeout(timeout),
        max_retries=check_max_retries(max_retries),
        default_headers=_check_headers(default_headers),
    )
