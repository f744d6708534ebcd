"""Who is calling: gateway keys, the admin key, and the `Caller` they make.

A request's key comes from ``Authorization: Bearer …`` or ``x-api-key``
(Anthropic's SDK uses the latter). A verified key is remembered for
``server.key_cache_s`` seconds, keyed by a hash of the key, so the store
is asked about each key at most that often. A key revoked, changed or
rotated on this machine moves the keys' change marker
(`axtui.store.markers`): every gateway here checks its keys again before
the next request, so the change applies at once; gateways on other
machines within ``key_cache_s``.

Limits, budgets and cache scope apply to the key's user (and its team).
A key's model allow-list, and its team's, are checked by `Authenticator.caller`
for every route that names a model; an expired key is a 401 ``key_expired``. Only a key marked
trusted may name its end users (the OpenAI ``user`` field), and they live
in the key's namespace: a trusted key of user ``acme`` naming ``alice``
makes calls as ``acme/alice``, never as the real ``alice``, unless the
operator maps the name (``[server.user_map]``, ``"acme/alice" = "alice"``).
The key still limits the key.

Every request to a guarded path is identified (`Authenticator.identify`)
before its body is read, so a request without a key is a 401 whatever it
sends. Reads under ``/api`` see what the `Viewer` may: the admin key (or
``--no-auth``) everything, a gateway key its own user's and key's data.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.errors import AuthenticationError, ConfigError, InvalidRequest, KeyExpired
from axtui.governance.policy import ModelCatalog
from axtui.redaction import remember
from axtui.server.constraints import END_USER
from axtui.server.errors import HTTPProblem
from axtui.server.keys import KeyInfo, key_marker, parse_key, verify_key
from axtui.store import Store
from axtui.types import Caller

__all__ = [
    "LOCAL_USER",
    "MIN_ADMIN_KEY",
    "Authenticator",
    "Identity",
    "Viewer",
    "bearer_token",
    "check_admin_key",
    "end_user_name",
]

#: The user of calls made without auth (``--no-auth``) that name no user.
LOCAL_USER = "local"
#: The shortest admin key accepted.
MIN_ADMIN_KEY = 16
_MAX_CACHED = 10_000
_MAX_USER = 256
#: An end user's name: no spaces, commas, slashes (the slash separates a trusted key's namespace) or control characters.
_END_USER_RE = re.compile(END_USER)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who sent a request, as far as its key says.

    ``admin`` for the admin key and for every request with ``--no-auth``;
    ``key`` the gateway key presented (also with ``--no-auth``, when valid).
    """

    admin: bool
    key: KeyInfo | None = None

    @property
    def label(self) -> str:
        """What the request is counted under: ``key:<id>``, ``admin`` or ``anonymous``."""
        if self.key is not None:
            return f"key:{self.key.id}"
        return "admin" if self.admin else "anonymous"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who reads under ``/api``: the admin (everything) or one key's tenant.

    A tenant owns its key, its user and the users in its user's namespace
    (``acme/…`` for user ``acme``, the end users its trusted keys name).
    """

    admin: bool
    user: str | None = None
    key: str | None = None
    #: The team the viewer's calls count for: its budget and limits apply to the viewer too.
    team: str | None = None

    def owns_user(self, user: str | None) -> bool:
        """Whether ``user``'s data is this viewer's to read."""
        if self.admin:
            return True
        return user is not None and self.user is not None and (user == self.user or user.startswith(self.user + "/"))

    def owns_key(self, key: str | None) -> bool:
        """Whether ``key``'s data is this viewer's to read."""
        return self.admin or (key is not None and key == self.key)


def check_admin_key(env: str, value: str | None = None) -> None:
    """Refuse an admin key too short to be a secret.

    Raises:
        ConfigError: the key in ``env`` is shorter than `MIN_ADMIN_KEY`; the message says how to make one.
    """
    value = os.environ.get(env) if value is None else value
    if value and len(value) < MIN_ADMIN_KEY:
        raise ConfigError(
            f"the admin key in {env} is {len(value)} characters long; it needs at least {MIN_ADMIN_KEY}. "
            f"Set a long random one, e.g. {env}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def end_user_name(raw: str | None, field: str = "user") -> str | None:
    """The end user a request names (the OpenAI ``user`` field: ``field`` on the client's wire), checked like any
    user name.

    Raises:
        InvalidRequest: too long, or with spaces, commas, slashes or control characters.
    """
    if not raw:
        return None
    if len(raw) > _MAX_USER:
        raise InvalidRequest(f"{field} is {len(raw)} characters long; send at most {_MAX_USER}", param=field)
    if not _END_USER_RE.match(raw):
        raise InvalidRequest(f"{field} must be a name without spaces, commas, slashes or control characters",
                             param=field)
    return raw


def bearer_token(headers: Mapping[bytes, bytes]) -> str | None:
    """The key a request presents, from ``Authorization`` or ``x-api-key``."""
    raw = headers.get(b"authorization")
    if raw and raw.startswith(b"Bearer ") and b" " not in raw[7:]:
        return raw[7:].decode("latin-1") or None  # the common case, without splitting
    if raw:
        scheme, _, value = raw.decode("latin-1").strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    raw = headers.get(b"x-api-key")
    return raw.decode("latin-1").strip() or None if raw else None


class Authenticator:
    """Checks gateway keys and the admin key, and names the caller.

    Args:
        store: where keys live.
        no_auth: serve every request without a key (``ax serve --no-auth``).
        admin_key_env: the environment variable holding the admin key.
        cache_s: how long a verified key is trusted without asking the store.
        user_map: end users of trusted keys who are real users (``acme/alice`` → ``alice``).
        clock: for the cache's expiry.

    Raises:
        ConfigError: the admin key is shorter than `MIN_ADMIN_KEY`.
    """

    def __init__(
        self,
        store: Store,
        *,
        no_auth: bool = False,
        admin_key_env: str = "AX_ADMIN_KEY",
        cache_s: float = 2.0,
        user_map: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        check_admin_key(admin_key_env)
        self.store = store
        self.no_auth = no_auth
        self.admin_key_env = admin_key_env
        self.cache_s = cache_s
        self.clock = clock
        self.user_map = dict(user_map or {})
        self._admin = os.environ.get(admin_key_env) or None
        remember(self._admin)  # never written anywhere, whichever field a client puts it in
        self._cache: dict[bytes, tuple[KeyInfo | None, float]] = {}
        # One store lookup per key at a time: concurrent requests with the
        # same key wait for it rather than each asking the store.
        self._pending: dict[bytes, asyncio.Future[KeyInfo | None]] = {}
        #: The keys' change marker and its version when what is cached was read (None: no store).
        self._marker = key_marker(store) if store is not None else None
        self._seen = self._marker.version() if self._marker is not None else None
        self._callers: dict[tuple[str, str, tuple[str, ...], str | None], Caller] = {}

    @property
    def admin_configured(self) -> bool:
        """Whether an admin key is set in the environment."""
        return self._admin is not None

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached verifications (of one key, or all)."""
        if key_id is None:
            self._cache.clear()
            return
        for digest, (info, _) in list(self._cache.items()):
            if info is not None and info.id == key_id:
                del self._cache[digest]

    async def key(self, token: str | None) -> KeyInfo:
        """The active key ``token`` names.

        Raises:
            AuthenticationError: no key, an unknown or malformed key, or a revoked one.
        """
        if not token:
            raise AuthenticationError(
                "no gateway key: send it as 'Authorization: Bearer axk_…' (or 'x-api-key'); "
                "`ax keys create --user NAME` makes one"
            )
        digest = hashlib.sha256(token.encode()).digest()
        if self._marker is not None and (seen := self._marker.version()) != self._seen:
            # A key was revoked, changed or rotated on this machine: every key is asked for again.
            self._seen = seen
            self._cache.clear()
            self._pending.clear()
        now = self.clock.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            info = hit[0]
        else:
            info = await self._lookup_once(digest, token)
        if info is None:
            raise AuthenticationError("the gateway key is not valid; check it, or make a new one with `ax keys create`")
        if not info.active:
            raise AuthenticationError(f"the gateway key {info.prefix} was revoked; ask for a new one")
        now = self.clock.now()
        if info.expired(now):
            if info.grace_until is not None and now >= info.grace_until:
                raise KeyExpired(f"the gateway key {info.prefix} was rotated and its old secret stopped working; "
                                 "use the new key")
            raise KeyExpired(f"the gateway key {info.prefix} has expired; ask for a new one "
                             f"(or `ax keys update {info.id} --expires 30d`)")
        return info

    async def _lookup_once(self, digest: bytes, token: str) -> KeyInfo | None:
        task = self._pending.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._lookup(token))
            self._pending[digest] = task
            seen = self._seen
            task.add_done_callback(lambda t: self._remember(digest, t, seen))
        # Shielded: a caller that goes away does not cancel the others' lookup.
        return await asyncio.shield(task)

    def _remember(self, digest: bytes, task: asyncio.Future[KeyInfo | None], seen: object) -> None:
        if self._pending.get(digest) is task:
            del self._pending[digest]
        if task.cancelled() or task.exception() is not None or seen != self._seen:
            return  # failed, or read before a change that landed meanwhile: not kept
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[digest] = (task.result(), self.clock.monotonic() + self.cache_s)

    async def _lookup(self, token: str) -> KeyInfo | None:
        if parse_key(token) is None:
            return None
        # The store may wait on a lock; never on the event loop.
        return await asyncio.to_thread(verify_key, self.store, token)

    async def identify(self, headers: Mapping[bytes, bytes]) -> Identity:
        """Who sent a request, from its key alone (nothing of its body is read).

        Raises:
            AuthenticationError: neither the admin key nor an active gateway key (unless auth is off).
        """
        token = bearer_token(headers)
        if self.no_auth:
            info = None
            if token and parse_key(token) is not None:
                # Without auth a key is optional; a valid one still names its user.
                try:
                    info = await self.key(token)
                except AuthenticationError:
                    info = None
            return Identity(admin=True, key=info)
        if self._is_admin_token(token):
            return Identity(admin=True)
        return Identity(admin=False, key=await self.key(token))

    async def viewer(self, headers: Mapping[bytes, bytes], identity: Identity | None = None) -> Viewer:
        """Who reads under ``/api``.

        Raises:
            AuthenticationError: neither the admin key nor an active gateway key (unless auth is off).
        """
        identity = identity or await self.identify(headers)
        if identity.admin:
            return Viewer(admin=True)
        assert identity.key is not None
        return Viewer(admin=False, user=identity.key.user, key=identity.key.id, team=identity.key.team)

    async def caller(
        self,
        headers: Mapping[bytes, bytes],
        end_user: str | None,
        identity: Identity | None = None,
        *,
        model: str | None = None,
        catalog: ModelCatalog | None = None,
        user_field: str = "user",
    ) -> Caller:
        """The caller of a request: its key's user, or the end user a trusted key names (namespaced).

        Args:
            headers: the request's headers (its key and ``X-Ax-Tags``).
            end_user: the end user the request names (checked with `end_user_name`).
            identity: the request's identity when already known (`identify`).
            model: the model the request names, checked against the key's (and its team's) allow-list.
            catalog: what ``model`` resolves to (aliases), for that check.
            user_field: where the request's wire carries the end user (``metadata.user_id`` for Messages).

        Raises:
            AuthenticationError: the key is missing or not valid (unless auth is off).
            KeyExpired: the key has expired, or its old secret's grace has ended.
            ModelNotAllowed: the key may not call ``model``.
            InvalidRequest: the end user's name is not valid.
            HTTPProblem: the admin key, which calls no model (403).
        """
        end_user = end_user_name(end_user, user_field)
        tags = _tags(headers)
        if self.no_auth:
            identity = identity or await self.identify(headers)
            if identity.key is not None:
                return self._caller_for(identity.key, end_user, tags, model, catalog)
            return Caller(user=end_user or LOCAL_USER, tags=tags)
        info = identity.key if identity is not None and identity.key is not None else None
        if info is None:
            token = bearer_token(headers)
            if self._is_admin_token(token):
                raise HTTPProblem(
                    403,
                    "the admin key manages ax under /api and calls no model; call with a gateway key "
                    "('Authorization: Bearer axk_…'): `ax keys create --user NAME` makes one",
                    error_type="permission_error",
                    code="gateway_key_required",
                )
            info = await self.key(token)
        return self._caller_for(info, end_user, tags, model, catalog)

    def _caller_for(
        self,
        info: KeyInfo,
        end_user: str | None,
        tags: tuple[str, ...],
        model: str | None,
        catalog: ModelCatalog | None,
    ) -> Caller:
        if model is not None and catalog is not None:
            info.policy.check(model, catalog)
        user = info.user
        if info.trusted and end_user:
            named = f"{info.user}/{end_user}"
            user = self.user_map.get(named, named)
        if info.tags:
            tags = tuple(dict.fromkeys(info.tags + tags))[:16]
        # Callers are frozen and few (one per key, user, tags and team): reuse them.
        ident = (info.id, user, tags, info.team)
        caller = self._callers.get(ident)
        if caller is None:
            if len(self._callers) >= _MAX_CACHED:
                self._callers.clear()
            caller = self._callers[ident] = Caller(user=user, key=info.id, tags=tags, team=info.team)
        return caller

    def is_admin(self, headers: Mapping[bytes, bytes]) -> bool:
        """Whether the request carries the admin key."""
        return self._is_admin_token(bearer_token(headers))

    def _is_admin_token(self, token: str | None) -> bool:
        if self._admin is None or token is None:
            return False
        return hmac.compare_digest(token.encode(), self._admin.encode())

    def require_admin(self, headers: Mapping[bytes, bytes]) -> None:
        """Refuse a write, or a read of what every tenant shares (keys, audit, exports of all), that lacks
        the admin key (anything goes with ``--no-auth``).

        Raises:
            HTTPProblem: 403, saying how to send or set the admin key.
        """
        if self.no_auth or self.is_admin(headers):
            return
        if self._admin is None:
            raise HTTPProblem(
                403,
                f"this needs the admin key (as every write under /api does, and reading keys, teams, the audit "
                f"trail, exports and what-ifs), and none is set: start the server with "
                f"{self.admin_key_env}=<a long random secret> in its environment",
                error_type="permission_error",
                code="admin_key_required",
            )
        raise HTTPProblem(
            403,
            f"this needs the admin key (the value of {self.admin_key_env} on the server) as 'Authorization: Bearer "
            "…', as every write under /api does, and reading keys, teams, the audit trail, exports and what-ifs",
            error_type="permission_error",
            code="admin_key_required",
        )

    async def require_reader(self, headers: Mapping[bytes, bytes]) -> None:
        """Reads under /api take the admin key or any active gateway key.

        Raises:
            AuthenticationError: neither was sent.
        """
        await self.identify(headers)


def _tags(headers: Mapping[bytes, bytes]) -> tuple[str, ...]:
    raw = headers.get(b"x-ax-tags")
    if not raw:
        return ()
    # Control characters are dropped: tags are printed in terminals (the dashboard's log, `ax monitor`).
    text = _CONTROL.sub("", raw.decode("utf-8", "replace"))
    return tuple(t for t in (p.strip() for p in text.split(",")) if t)[:16]


