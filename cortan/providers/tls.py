"""TLS for plain-http providers: a verifying context that reads its CA bundle only if used.

Layer: providers. httpx and httpx2 build a verifying TLS context whenever a client
is made, and reading the certificate authorities costs 35-55 ms of CPU, which a
local Ollama or llama.cpp on ``http://`` never uses (issue 7: the first request
pays only for what it needs). For an ``http://`` base URL the providers pass a
:class:`DeferredCAContext` instead: it verifies exactly like the default
(``CERT_REQUIRED``, hostname checked) and loads its authorities just before the
first handshake, which only a redirect to https or an https proxy would cause.
``https://`` URLs keep each library's own default context, unchanged.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from typing import Any

CALoader = Callable[[ssl.SSLContext], None]


def load_like_httpx(context: ssl.SSLContext) -> None:
    """What httpx trusts by default: ``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else certifi."""
    if cafile := os.environ.get("SSL_CERT_FILE"):
        context.load_verify_locations(cafile=cafile)
    elif capath := os.environ.get("SSL_CERT_DIR"):
        context.load_verify_locations(capath=capath)
    else:
        import certifi

        context.load_verify_locations(cafile=certifi.where())


def load_system(context: ssl.SSLContext) -> None:
    """The platform's default authorities (what httpx2 trusts on Linux)."""
    context.load_default_certs(ssl.Purpose.SERVER_AUTH)


class DeferredCAContext(ssl.SSLContext):
    """A client context that calls its loader once, before the first TLS connection."""

    _load: CALoader
    _lock: threading.Lock
    _loaded: bool

    def __new__(cls, load: CALoader = load_like_httpx) -> DeferredCAContext:
        context = super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)
        context._load, context._lock, context._loaded = load, threading.Lock(), False
        return context

    @property
    def loaded(self) -> bool:
        return self._loaded

    def _ensure_loaded(self) -> None:
        with self._lock:
            if not self._loaded:
                self._load(self)
                self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._ensure_loaded()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._ensure_loaded()
        return super().wrap_bio(*args, **kwargs)


def get_verify(url: str, load: CALoader = load_like_httpx) -> ssl.SSLContext | bool:
    """What to pass as a client's ``verify``: a deferred context for http, the default for https."""
    if url.lower().startswith("http://"):
        return DeferredCAContext(load)
    return True
