"""Connection settings every pool shares: TLS verification, proxy, environment.

The API pool and the storage pools (httpx for the API and async downloads,
urllib3 for sync download bodies) are all built from one `NetworkSettings`,
so a CA bundle, a proxy or `SSL_CERT_FILE` applies to every request alike.
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import httpx

Verify = bool | str | os.PathLike[str] | ssl.SSLContext


def check_verify(verify: object) -> Verify:
    if isinstance(verify, bool | str | os.PathLike | ssl.SSLContext):
        return verify
    raise TypeError(
        f"verify must be True, False, a CA bundle path or an ssl.SSLContext, not {type(verify).__name__}"
    )


def check_proxy(proxy: object) -> str | None:
    if proxy is None:
        return None
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be a URL string, not {type(proxy).__name__}")
    if not proxy.startswith(("http://", "https://", "socks5://")):
        raise ValueError("proxy must be an http://, https:// or socks5:// URL")
    return proxy


@attrs.frozen
class NetworkSettings:
    """How to reach hosts: `verify` and `trust_env` as httpx takes them, an explicit `proxy`."""

    verify: Verify = True
    proxy: str | None = attrs.field(default=None, repr=False)  # may carry proxy credentials
    trust_env: bool = True

    def ssl_context(self) -> ssl.SSLContext:
        """One context for every pool, made the way httpx makes its own (certifi unless told
        otherwise; `SSL_CERT_FILE` / `SSL_CERT_DIR` when `trust_env`)."""
        import httpx

        verify = self.verify
        if isinstance(verify, str | os.PathLike):
            path = os.fspath(verify)
            if os.path.isdir(path):
                return ssl.create_default_context(capath=path)
            return ssl.create_default_context(cafile=path)
        return httpx.create_ssl_context(verify=verify, trust_env=self.trust_env)

    def environment_proxies(self) -> dict[str, str]:
        """The environment's (or the OS settings') proxies, read once per pool as httpx reads
        them once per client (~60 µs a read: per request, it showed in a batch's profile);
        `{}` with an explicit `proxy` or without `trust_env`."""
        if self.proxy is not None or not self.trust_env:
            return {}
        return urllib.request.getproxies()

    def proxy_for(self, url: httpx.URL, environment: Mapping[str, str]) -> str | None:
        """The proxy a request to `url` goes through: ours, else the `environment`'s (unless
        `NO_PROXY` exempts the host), as httpx decides for its own requests."""
        if self.proxy is not None:
            return self.proxy
        chosen = environment.get(url.scheme) or environment.get("all")
        if not chosen or urllib.request.proxy_bypass(url.host):
            return None
        return chosen if "://" in chosen else f"http://{chosen}"
