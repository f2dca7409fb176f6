"""The one boundary for failures of an API request: anything a send can raise becomes ours.

openai-python's base client does the same: httpx errors, h11/httpcore protocol
errors, UnicodeError and ValueError from encoding a request all become one
documented exception whose text names the failure kind and the host, scrubbed
of the API key and the URL's query values. Nothing is chained: the original
exception (whose text may hold `Bearer <key>` or a whole request line) is
dropped, not kept as `__cause__`/`__context__`. Only network faults retry.
"""

from __future__ import annotations

import httpx

from . import _exceptions as exc
from ._redact import query_secrets, scrub

# Faults of the network or the server's connection, worth another attempt; everything
# else (an invalid request, a broken body, a bug) would fail the same way again.
RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_DETAIL_LENGTH = 160


def request_secrets(request: httpx.Request, api_key: str) -> tuple[str, ...]:
    """Strings no exception text may hold: the API key and the URL's query values."""
    return (api_key, *query_secrets(str(request.url)))


def host_of(request: httpx.Request) -> str:
    """`host:port` of a request, never its path or query."""
    url = request.url
    port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    return f"{url.host}:{port}" if port else url.host


def _detail(error: BaseException, secrets: tuple[str, ...]) -> str:
    """`Type: first line of the message`, scrubbed and short (the OS's words for a network fault)."""
    text = scrub(str(error), secrets).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > _DETAIL_LENGTH:
        first = first[: _DETAIL_LENGTH - 1] + "…"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def send_error(error: Exception, request: httpx.Request, api_key: str) -> tuple[exc.VerbexError, bool]:
    """(our exception for `error` raised while sending `request`, whether to retry)."""
    secrets = request_secrets(request, api_key)
    host = host_of(request)
    if isinstance(error, httpx.TimeoutException):
        return exc.APITimeoutError(f"request to {host} timed out ({_detail(error, secrets)})"), True
    if isinstance(error, httpx.ConnectError):
        return exc.APIConnectionError(f"could not connect to {host} ({_detail(error, secrets)})"), True
    if isinstance(error, RETRYABLE_ERRORS):
        return exc.APIConnectionError(f"connection to {host} failed ({_detail(error, secrets)})"), True
    # The texts below may quote the request itself (an illegal header value, the request line
    # an encoder choked on): only the failure's kind is kept.
    if isinstance(error, httpx.ProxyError):
        return exc.APIConnectionError(f"the proxy refused the request to {host} (ProxyError)"), False
    if isinstance(error, httpx.LocalProtocolError | httpx.InvalidURL | UnicodeError | ValueError):
        return exc.APIConnectionError(
            f"request to {host} could not be sent: it is not valid HTTP ({type(error).__name__})"
        ), False
    return exc.APIConnectionError(f"request to {host} failed ({type(error).__name__})"), False


def closed_error() -> exc.ClientClosedError:
    return exc.ClientClosedError(
        "the client is closed: make a new Verbex/AsyncVerbex, or use this one inside its `with` block"
    )


def argument_error(error: Exception, secrets: tuple[str, ...]) -> ValueError:
    """ValueError for a request httpx could not even build from the arguments (bad URL, header)."""
    if isinstance(error, UnicodeError):  # its args hold the whole string it failed on
        return ValueError("the request cannot be encoded: an argument holds a character HTTP cannot carry")
    return ValueError(f"the request cannot be built from these arguments ({_detail(error, secrets)})")
