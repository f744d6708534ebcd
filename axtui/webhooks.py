"""Webhooks: the one sender of budget alerts and alert rules' events.

A delivery is a JSON POST over one pooled aiohttp session, retried with
backoff on connection errors, timeouts, 408, 429 and 5xx answers
(``Retry-After`` honoured up to the backoff cap), and given up at once on
anything else. The outcome (delivered, or failed with a reason) is
returned for the caller to record; nothing here raises but cancellation.

A webhook URL comes from whoever may add an alert rule, so where it may
point is the operator's decision, not the URL's (`AddressPolicy`):

- link-local addresses (169.254.0.0/16, fe80::/10, where clouds answer
  metadata requests), cloud metadata addresses outside them
  (100.100.100.200, fd00:ec2::254), unspecified, multicast and reserved
  addresses are refused always;
- loopback and private ranges (10/8, 172.16/12, 192.168/16, 100.64/10,
  fc00::/7, …) only when ``[webhooks] allow_loopback`` /
  ``allow_private`` say so;
- the check is made on every address the name resolves to (an IPv6 form
  of an IPv4 address is checked as that address), inside the connector's
  resolver, so the connection goes to the address that was checked: a
  name that resolves differently the second time (DNS rebinding) gains
  nothing;
- redirects are never followed (a 3xx is a failed delivery);
- the reply's body is never read, only its status.

A webhook URL often carries a token (in its path or query), so it never
appears in a log line or a stored error: both name the host only
(`webhook_host`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from axtui import __version__
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import WebhooksConfig
from axtui.redaction import scrub

__all__ = [
    "AddressPolicy",
    "AddressRefused",
    "Delivery",
    "GuardedResolver",
    "WebhookSender",
    "refused_always",
    "webhook_host",
    "webhook_policy",
]

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata services that do not live in a link-local range (Alibaba; AWS over IPv6).
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254"))
#: Carrier-grade NAT (RFC 6598): another operator's private space; Python's ``is_private`` leaves it out.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(OSError):
    """A webhook's address is one the policy refuses (never retried)."""


def webhook_host(url: str) -> str:
    """The host (and port) of a webhook URL: what logs and errors may show of it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "?"
    return f"{host}:{port}" if port else host


def _embedded_v4(addr: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address (else the address itself)."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.sixtofour is not None:
            return addr.sixtofour
        if addr in _NAT64:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses a webhook may reach.

    Args:
        allow_loopback: 127.0.0.0/8 and ::1 (a receiver on this machine).
        allow_private: private and shared ranges (a receiver on the LAN or in the VPC).
    """

    allow_loopback: bool = False
    allow_private: bool = False

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be reached, or None when it may."""
        try:
            addr: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        addr = _embedded_v4(addr)
        if addr in _METADATA:
            return "it is a cloud metadata address"
        if addr.is_link_local:
            return "it is a link-local address (where clouds serve instance metadata)"
        if addr.is_unspecified or addr.is_multicast or addr.is_reserved:
            return "it is not a unicast address"
        if addr.is_loopback:
            return None if self.allow_loopback else "it is a loopback address (allow it with [webhooks] allow_loopback)"
        if addr.is_private or addr in _SHARED or not addr.is_global:
            return None if self.allow_private else "it is a private address (allow it with [webhooks] allow_private)"
        return None


def refused_always(host: str) -> str | None:
    """Why ``host`` can never be a webhook's (a link-local or metadata address), or None.

    Names return None: they are checked on what they resolve to, at each delivery.
    """
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return AddressPolicy(allow_loopback=True, allow_private=True).refusal(host)


def webhook_policy(config: WebhooksConfig) -> AddressPolicy:
    """The address policy the ``[webhooks]`` section sets."""
    return AddressPolicy(allow_loopback=config.allow_loopback, allow_private=config.allow_private)


class GuardedResolver(AbstractResolver):
    """Resolves names like ``inner`` and refuses the answer unless every address passes ``policy``.

    aiohttp connects to exactly the addresses its resolver returns, so the
    address checked is the address connected to.
    """

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        """The addresses of ``host``, all of them allowed.

        Raises:
            AddressRefused: one of the addresses is refused by the policy.
        """
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        found = await self._inner.resolve(host, port, family)
        for result in found:
            why = self.policy.refusal(result["host"])
            if why is not None:
                raise AddressRefused(f"webhook host {host} resolves to {result['host']}, which is refused: {why}")
        return found

    async def close(self) -> None:
        """Close the inner resolver."""
        if self._inner is not None:
            await self._inner.close()


@dataclass(slots=True, frozen=True)
class Delivery:
    """How one delivery went: ``status`` is the receiver's last HTTP status (None: no answer)."""

    ok: bool
    attempts: int
    error: str | None = None
    status: int | None = None


class WebhookSender:
    """POSTs JSON to webhooks over one pooled aiohttp session, within an `AddressPolicy`.

    Args:
        timeout_s: the whole-request timeout of one attempt.
        attempts: tries per delivery (at least one).
        backoff_s: the first wait between tries; doubled each time, capped at ``max_backoff_s``.
        clock: waits between tries go through it (tests use a fake clock).
        policy: which addresses may be reached (default: public addresses only).
        resolver: the name resolver under the policy's check (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        policy: AddressPolicy | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self.policy = policy or AddressPolicy()
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.policy, self._resolver))
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"User-Agent": f"ax/{__version__}", "Content-Type": "application/json"},
                trust_env=False,  # a proxy from the environment would make the address check moot
            )
        return self._session

    def check_url(self, url: str) -> str | None:
        """Why ``url`` cannot be a webhook before any lookup (scheme, host, a refused literal address), or None."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
            _ = parts.port
        except ValueError:
            return "the webhook URL is malformed"
        if parts.scheme not in ("http", "https") or not host:
            return "a webhook must be an http:// or https:// URL with a host"
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return None  # a name: checked on what it resolves to
        why = self.policy.refusal(host)
        return None if why is None else f"webhook host {host} is refused: {why}"

    async def deliver(self, url: str, payload: dict[str, Any]) -> Delivery:
        """POST ``payload`` to ``url``, retrying; never raises (except cancellation)."""
        host = webhook_host(url)
        refused = self.check_url(url)
        if refused is not None:
            return Delivery(False, 0, refused)
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        wait = self.backoff_s
        error = "not tried"
        status: int | None = None
        for attempt in range(1, self.attempts + 1):
            retry_after: float | None = None
            try:
                async with self._client().post(url, data=body, allow_redirects=False) as resp:
                    status = resp.status
                    if 200 <= resp.status < 300:
                        return Delivery(True, attempt, None, resp.status)
                    # The reply's body is never read: it is the receiver's, and may be anything.
                    if 300 <= resp.status < 400:
                        return Delivery(False, attempt, f"HTTP {resp.status} from {host}: redirects are not followed",
                                        resp.status)  # fmt: skip
                    error = f"HTTP {resp.status} from {host}"
                    if resp.status not in (408, 429) and resp.status < 500:
                        return Delivery(False, attempt, error, resp.status)
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except asyncio.CancelledError:
                raise
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, AddressRefused):
                    return Delivery(False, attempt, str(exc.os_error))
                error = _describe(exc, url)
                status = None
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                error = _describe(exc, url)
                status = None
            except Exception as exc:  # a webhook must never take its caller down
                log.error("webhook to %s: unexpected failure: %s", host, _describe(exc, url))
                return Delivery(False, attempt, _describe(exc, url))
            if attempt < self.attempts:
                await self.clock.sleep(min(retry_after if retry_after is not None else wait, self.max_backoff_s))
                wait = min(wait * 2, self.max_backoff_s)
        return Delivery(False, self.attempts, error, status)

    async def aclose(self) -> None:
        """Close the pooled session."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _describe(exc: BaseException, url: str) -> str:
    """An exception as a short reason that names the webhook's host, never its URL (it may hold a token)."""
    text = str(exc)
    if text:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{webhook_host(url)}"
        text = text.replace(url, origin)
        if parts.path or parts.query:
            secret = parts.path + (f"?{parts.query}" if parts.query else "")
            text = text.replace(secret, "/…") if len(secret) > 1 else text
        text = scrub(text)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: use our own backoff
