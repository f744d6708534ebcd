"""What every request passes before any route reads it: Host, Origin, key, content type.

In order, for every HTTP request:

1. **Host** (421): the ``Host`` header names the address the server is
   bound to, a loopback name (``localhost``, ``127.0.0.1``, ``::1``) or a
   name in ``server.allowed_hosts``. A web page that rebinds its own
   domain to 127.0.0.1 sends its domain as Host, and is refused. A
   server bound to every interface (``0.0.0.0``) with keys on takes any
   Host unless ``server.allowed_hosts`` lists them.
2. **Origin** (403): a write (POST, PUT, PATCH, DELETE) that a browser
   sends from another site carries its ``Origin``; one whose host fails
   the Host rule is refused, bodiless or not.
3. **Key** (401): a guarded path (everything but ``/healthz``, ``/readyz``,
   ``/metrics`` and the API description) needs the admin key or an active
   gateway key, checked before the body is read; with ``--no-auth`` a
   key is optional. The `Identity` found is kept for the route.
4. **JSON** (415): a write with a body must say ``Content-Type:
   application/json`` (or ``application/…+json``), so an HTML form or a
   ``text/plain`` fetch from another site never reaches a route.

The rules are path-generic: a route added later gets them without a line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from contextvars import ContextVar

from pydantic_core import to_json

from axtui.errors import AxError
from axtui.server._asgi import Scope, Send, send_bytes
from axtui.server.auth import Identity
from axtui.server.errors import HTTPProblem, error_payload
from axtui.server.state import ServerState

__all__ = ["OPEN_PATHS", "RequestGuard", "current_identity", "host_name", "is_loopback", "send_refusal"]

#: Paths anyone may read: probes, scrapers and the API's description.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
#: The identity of the request being served (set by the guard, read by `Authenticator.caller`).
current_identity: ContextVar[Identity | None] = ContextVar("ax_identity", default=None)


def host_name(value: str) -> str:
    """The host part of a ``Host`` header or an origin's authority, lower-case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface."""
    host = host.strip().strip("[]").lower().rstrip(".")
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin_host(origin: str) -> str | None:
    scheme, sep, rest = origin.partition("://")
    if not sep or not scheme:
        return None
    return host_name(rest.split("/", 1)[0].rsplit("@", 1)[-1])


class RequestGuard:
    """The checks of one server process (see the module's description).

    Args:
        state: the server's state (its auth, once started, and its settings).
        bind_host: the address the server listens on (None: loopback).
        allowed_hosts: more Host names to accept: exact names, ``*.example.com``, or ``*`` for any.
    """

    def __init__(self, state: ServerState, bind_host: str | None, allowed_hosts: Iterable[str] = ()) -> None:
        self.state = state
        self._seen: dict[bytes, bool] = {}
        names = [h.strip().lower().rstrip(".") for h in allowed_hosts if h.strip()]
        self._any = "*" in names
        self._exact = {host_name(h) for h in names if not h.startswith("*")}
        self._suffixes = tuple(h[1:] for h in names if h.startswith("*."))
        bind = (bind_host or "127.0.0.1").strip()
        if bind in _WILDCARD_BINDS:
            # Bound everywhere: the names it is reached by are unknown. With keys on
            # any Host is served unless allowed_hosts names them; without keys only
            # loopback names and allowed_hosts.
            self._any = self._any or (not state.no_auth and not names)
        else:
            self._exact.add(host_name(bind))

    def host_allowed(self, host: str) -> bool:
        """Whether a request naming ``host`` is for this server."""
        if self._any:
            return True
        name = host_name(host)
        return is_loopback(name) or name in self._exact or (bool(self._suffixes) and name.endswith(self._suffixes))

    def _host_ok(self, raw: bytes) -> bool:
        # Every request names one of a few hosts: remember the answers (a bounded few).
        known = self._seen.get(raw)
        if known is None:
            known = self.host_allowed(raw.decode("latin-1"))
            if len(self._seen) >= 256:
                self._seen.clear()
            self._seen[raw] = known
        return known

    async def check(self, scope: Scope, headers: dict[bytes, bytes]) -> AxError | None:
        """The refusal a request gets, or None; keeps its identity in ``scope`` and `current_identity`."""
        scope["ax.headers"] = headers
        host = headers.get(b"host")
        if host is not None and not self._host_ok(host):
            return HTTPProblem(
                421,
                "this gateway does not serve that host name; reach it by the address it listens on or a "
                "loopback name, or add the name to server.allowed_hosts in its config",
                error_type="invalid_request_error", code="misdirected_request",
            )
        method = scope["method"]
        write = method in _WRITES
        if write:
            origin = headers.get(b"origin")
            if origin is not None:
                origin_host = _origin_host(origin.decode("latin-1"))
                if origin_host is None or not self.host_allowed(origin_host):
                    return HTTPProblem(
                        403, "writes from a web page of another site are refused",
                        error_type="permission_error", code="cross_origin",
                    )
        auth = self.state.auth
        if auth is not None and scope["path"] not in OPEN_PATHS:
            try:
                identity = await auth.identify(headers)
            except AxError as exc:
                return exc
            scope["ax.identity"] = identity
            current_identity.set(identity)
        if write and _has_body(headers) and not _is_json(headers.get(b"content-type")):
            return HTTPProblem(
                415, "send the request body as JSON with 'Content-Type: application/json'",
                error_type="invalid_request_error", code="unsupported_media_type",
            )
        return None


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"0", b"")
    return b"transfer-encoding" in headers


def _is_json(content_type: bytes | None) -> bool:
    if content_type == b"application/json":
        return True
    if not content_type:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


async def send_refusal(send: Send, exc: BaseException, *, anthropic: bool = False) -> None:
    """Answer a request the guard refused, in the error shape of its route."""
    status, body, headers = error_payload(exc, anthropic=anthropic)
    await send_bytes(send, status, to_json(body), headers)
