"""`RateLimiter`: the engine's `Limiter`, over every scope, in requests and tokens.

``admit(subjects, tokens)`` checks every limit of every subject at once —
one request against each request limit, the estimated tokens against each
token limit — and either spends them all or nothing (a global refusal
never eats into the user's quota). A refusal is `RateLimited` naming the
subject, the limit and the wait; an admission is a `Ticket` whose
``states`` feed the ``X-RateLimit-*`` headers. ``settle(ticket, tokens)``
then replaces the token estimate with the real count.

The same object is what the dashboard and the server use to show and
change limits: `status`, `set_limit`, `delete_limit`, `reset`. Changes
made here apply at once, and so do those made by another process on this
machine: each moves the limits' change marker (`axtui.store.markers`),
and a request that finds it moved waits for the limits to be read again.
Changes made on another machine are picked up within ``[ratelimit]
poll_s`` (one cheap read of a version counter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from axtui.bus import Event, SettingsChanged
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import RateLimitConfig
from axtui.errors import ConfigError, InvalidRequest, RateLimited
from axtui.ports import LimitState, Subject, Ticket
from axtui.ratelimit.backends.base import Backend, Check
from axtui.ratelimit.backends.memory import MemoryBackend
from axtui.ratelimit.gcra import Verdict
from axtui.ratelimit.parse import DEFAULT, UNLIMITED, Rate, parse_limit_value
from axtui.ratelimit.rules import RuleBook, Slot, StoredLimit, check_stored, describe_subject, parse_subject
from axtui.ratelimit.upstream import UpstreamGuard
from axtui.store.tables_ratelimit import limits_marker

__all__ = ["LimitStatus", "RateLimiter"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LimitStatus:
    """One limit of one subject and how much of it is in use.

    ``subject`` is ``*`` for a default that applies to every user or key
    (then ``used``/``remaining``/``reset_after`` are None: there is no one
    counter to read).
    """

    scope: str
    subject: str
    label: str
    unit: str
    limit: str
    amount: int
    period_s: float
    algorithm: str
    burst: int | None
    source: str
    used: int | None = None
    remaining: int | None = None
    reset_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


@dataclass(slots=True)
class _Handle:
    """What `settle` needs of an admission: its token limits and providers."""

    token_slots: tuple[Slot, ...]
    providers: tuple[str, ...]
    settled: bool = False


class RateLimiter:
    """Rate limits over subjects, in requests and estimated tokens.

    Args:
        backend: where the state lives (`MemoryBackend`, `StoreBackend`, `RedisBackend`).
        config: the ``[ratelimit]`` settings (defaults per scope).
        store: where per-subject limits are kept; None keeps only the config's.
        clock: the clock decisions use (the Redis backend uses Redis's own; a store backend must
                have the same).
        providers: provider instances by name; their ``upstream_limits`` add a
            provider-scope limit learnt from the providers' own headers.
        stored: per-subject limits to start with instead of reading the store.
    """

    def __init__(
        self,
        backend: Backend,
        config: RateLimitConfig | None = None,
        *,
        store: Any = None,
        clock: Clock = SYSTEM_CLOCK,
        providers: Mapping[str, Any] | None = None,
        stored: Iterable[StoredLimit] | None = None,
    ) -> None:
        if getattr(backend, "clock", clock) is not clock:
            # Leases would expire, and be given back, on another time than decisions are made.
            raise ValueError("the rate-limit backend runs on another clock than the limiter: give both the same")
        self.backend = backend
        self.store = store
        self.clock = clock
        self.upstream = UpstreamGuard(providers) if providers else None
        self._config = config or RateLimitConfig()
        self._version = -1
        #: The limits' change marker, and its version when the limits in hand were read.
        self._marker = limits_marker(store) if store is not None else None
        self._marker_seen = self._marker.version() if self._marker is not None else None
        self._marker_read: asyncio.Future[bool] | None = None
        if stored is None and store is not None:
            self._version = self._read_version()
            stored = self._read_stored()
        self.book = RuleBook.build(self._config, stored or ())
        self._fast = backend.acquire_now if isinstance(backend, MemoryBackend) else None
        self._next_poll = clock.now() + self._config.poll_s
        self._poll_task: asyncio.Task[None] | None = None

    @property
    def config(self) -> RateLimitConfig:
        """The ``[ratelimit]`` settings in force."""
        return self._config

    @property
    def has_provider_limits(self) -> bool:
        """Whether the engine should admit each provider too (limits of their own, or upstream figures)."""
        return self.book.has_provider_limits or (self.upstream is not None and self.upstream.active)

    # -- the Limiter port ----------------------------------------------------------------

    async def admit(self, subjects: Sequence[Subject], tokens: int) -> Ticket:
        """Admit one request of ``tokens`` estimated tokens for every subject, or raise.

        Raises:
            RateLimited: a limit (or a provider's own quota) is exhausted; nothing was spent.
            StoreError: the backend could not be reached.
        """
        now = self.clock.now()
        # A read begun before the change (the background poll's) may finish after this one: then again.
        while self._marker is not None and self._marker.version() != self._marker_seen:
            await self._follow_marker()
        if now >= self._next_poll and self.store is not None:
            self._schedule_poll()
        book = self.book
        checks: list[Check] = []
        token_slots: list[Slot] = []
        providers: list[str] | None = None
        for subject in subjects:
            for slot in book.slots(subject):
                if slot.unit == "requests":
                    checks.append((slot, 1))
                else:
                    checks.append((slot, tokens))
                    token_slots.append(slot)
            if subject[0] == "provider" and self.upstream is not None:
                refusal = self.upstream.check(subject[1], tokens, now)
                if refusal is not None:
                    raise refusal
                providers = [*(providers or ()), subject[1]]
        states: list[LimitState] = []
        if checks:
            verdicts = self._fast(checks, now) if self._fast is not None else await self.backend.acquire(checks, now)
            worst: tuple[Slot, Verdict, int] | None = None
            for i, v in enumerate(verdicts):
                slot = checks[i][0]
                if not v.allowed and (worst is None or v.retry_after > worst[1].retry_after):
                    worst = (slot, v, checks[i][1])
                states.append(LimitState(slot.label, slot.unit, slot.amount, v.remaining, v.reset_after))
            if worst is not None:
                raise _refusal(*worst)
        handle = None
        if providers:
            for name in providers:
                self.upstream.charge(name, tokens)  # type: ignore[union-attr]
        if token_slots or providers:
            handle = _Handle(tuple(token_slots), tuple(providers or ()))
        return Ticket(tuple(subjects), tokens, states, handle)

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        """Replace the admission's token estimate with ``tokens``, the real count (once per ticket)."""
        h = ticket.handle
        if not isinstance(h, _Handle) or h.settled:
            return
        h.settled = True
        delta = int(tokens) - ticket.tokens
        if delta == 0:
            return
        if h.token_slots:
            await self.backend.adjust(h.token_slots, delta, self.clock.now())
        if self.upstream is not None:
            for name in h.providers:
                self.upstream.correct(name, delta)

    # -- what the dashboard and the server use -------------------------------------------

    async def status(self, *, user: str | None = None, subjects: Sequence[Subject] | None = None) -> list[LimitStatus]:
        """Each limit in force, with how much is used, left, and when it is full again.

        Args:
            user: only the limits that apply to this user (global, the user's own).
            subjects: exactly these subjects instead.
        """
        await self.refresh()
        book = self.book
        if subjects is not None:
            chosen = list(subjects)
        elif user is not None:
            chosen = [("global", "*"), ("user", user)]
        else:
            chosen = book.subjects()
        slots = [slot for subject in chosen for slot in book.slots(subject)]
        used = await self.backend.peek(slots, self.clock.now()) if slots else []
        out = [_status(slot, u) for slot, u in zip(slots, used, strict=True)]
        if subjects is None and user is None:
            # The per-user and per-key defaults, which have no one counter.
            for scope in ("user", "key"):
                for slot in book.slots((scope, "*")):
                    if slot.source == "config":
                        out.append(_status(slot, None, subject="*"))
        return out

    async def set_limit(
        self,
        subject: Subject | str,
        requests: str | None = None,
        tokens: str | None = None,
        *,
        scope: str | None = None,
        algorithm: str | None = None,
        burst: int | None = None,
    ) -> StoredLimit:
        """Store a limit for one subject; it applies at once here, and in other processes within ``poll_s``.

        Args:
            subject: ``alice``, ``user:alice``, ``key:k_1``, ``provider:openai``, ``global``, or a tuple.
            requests: the request limit (``60/minute``), ``unlimited``, ``default``; None keeps the stored one.
            tokens: the token limit, likewise.
            scope: the scope when ``subject`` names none (``user``).
            algorithm: ``token-bucket`` or ``sliding-window``; None keeps the stored one (or the default).
            burst: how many requests may pass at once (token bucket); None keeps the stored one.

        Raises:
            InvalidRequest: a limit, the subject, the algorithm or the burst is wrong; nothing is written.
            ConfigError: this limiter has no store to keep limits in.
        """
        subj = self._subject(subject, scope)
        store = self._require_store()
        old = self.book.stored.get(subj)
        algo = algorithm or (old.algorithm if old else None)
        # A switch to a sliding window drops the bucket's burst, which no longer means anything.
        kept_burst = None if algorithm == "sliding-window" or old is None else old.burst
        new_burst = burst if burst is not None else kept_burst
        try:
            check_stored(requests, tokens, algorithm, new_burst, algo or self._config.algorithm)
        except ValueError as exc:
            raise InvalidRequest(f"{describe_subject(subj)}: {exc}") from None
        req = _normalise(requests, old.requests if old else None)
        tok = _normalise(tokens, old.tokens if old else None)
        from axtui.store.tables_ratelimit import write_limit

        now = self.clock.now()
        await asyncio.to_thread(write_limit, store, subj[0], subj[1], requests=req, tokens=tok, algorithm=algo,
                                burst=new_burst, now=now)
        await self.refresh(force=True)
        return StoredLimit(subj[0], subj[1], req, tok, algo, new_burst, now)

    async def delete_limit(self, subject: Subject | str, *, scope: str | None = None) -> bool:
        """Remove a subject's stored limit (the defaults apply again); False when it had none."""
        subj = self._subject(subject, scope)
        from axtui.store.tables_ratelimit import remove_limit

        gone = await asyncio.to_thread(remove_limit, self._require_store(), subj[0], subj[1])
        await self.refresh(force=True)
        return gone

    async def reset(self, subject: Subject | str, *, scope: str | None = None) -> Subject:
        """Forget what a subject has used: its quota is full again. Returns the subject."""
        subj = self._subject(subject, scope)
        await self.backend.clear(*subj)
        return subj

    def stored_limits(self) -> list[StoredLimit]:
        """The per-subject limits in force, by scope and subject."""
        return [self.book.stored[k] for k in sorted(self.book.stored)]

    def update_config(self, config: RateLimitConfig) -> None:
        """Apply new ``[ratelimit]`` defaults (the backend stays as it was built)."""
        self._config = config
        self.book = RuleBook.build(config, self.book.stored.values())

    async def refresh(self, *, force: bool = False) -> bool:
        """Re-read the stored limits if another process changed them; True when they changed."""
        if self.store is None:
            return False
        self._next_poll = self.clock.now() + self._config.poll_s
        # Taken before the limits are read: a change made during the read moves it again.
        seen = self._marker.version() if self._marker is not None else None
        version = await asyncio.to_thread(self._read_version)
        if version == self._version and not force:
            self._marker_seen = seen
            return False
        stored = await asyncio.to_thread(self._read_stored)
        self._version = version
        self.book = RuleBook.build(self._config, stored)
        self._marker_seen = seen
        return True

    async def _follow_marker(self) -> None:
        """A limit changed on this machine since these were read: one read for every request that saw it."""
        task = self._marker_read
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = self._marker_read = asyncio.ensure_future(self.refresh())
        try:
            await asyncio.shield(task)
        except Exception as exc:  # limits keep working on what was last read
            log.warning("could not re-read stored rate limits: %s", exc)
            self._marker_seen = self._marker.version() if self._marker is not None else None

    def on_event(self, event: Event) -> None:
        """An event-bus handler: new settings replace the defaults."""
        if isinstance(event, SettingsChanged):
            self.update_config(event.settings.ratelimit)

    async def aclose(self) -> None:
        """Stop polling and release the backend."""
        if self._poll_task is not None and not self._poll_task.done():
            self._poll_task.cancel()
            # The poll's own failure was logged when it happened.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poll_task
        await self.backend.aclose()

    # -- inside ----------------------------------------------------------------------------

    def _subject(self, subject: Subject | str, scope: str | None) -> Subject:
        try:
            if isinstance(subject, str):
                return parse_subject(subject, scope)
            return parse_subject(subject[1] if subject[0] != "global" else "global", subject[0])
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def _require_store(self) -> Any:
        if self.store is None:
            raise ConfigError("per-subject rate limits are kept in the store, and this limiter has none; "
                              "open it with a store (ax does this by default)")
        return self.store

    def _read_version(self) -> int:
        from axtui.store.tables_ratelimit import read_limits_version

        return read_limits_version(self.store)

    def _read_stored(self) -> list[StoredLimit]:
        from axtui.store.tables_ratelimit import read_limits

        out = []
        for r in read_limits(self.store):
            out.append(StoredLimit(r.scope, r.subject, r.requests, r.tokens, r.algorithm, r.burst, r.updated_at))
        return out

    def _schedule_poll(self) -> None:
        self._next_poll = self.clock.now() + self._config.poll_s
        if self._poll_task is not None and not self._poll_task.done():
            return

        async def poll() -> None:
            try:
                await self.refresh()
            except Exception as exc:  # limits keep working on what was last read
                log.warning("could not re-read stored rate limits: %s", exc)

        self._poll_task = asyncio.get_running_loop().create_task(poll())


def _normalise(text: str | None, keep: str | None) -> str | None:
    """A limit as stored: canonical text, ``unlimited``, or None for the default."""
    if text is None:
        return keep
    try:
        value = parse_limit_value(text)
    except ValueError:
        return text  # validated (and refused) by check_stored with the full message
    if value == DEFAULT or value is None:
        return None
    if value == UNLIMITED:
        return UNLIMITED
    assert isinstance(value, Rate)
    return value.text


def _status(slot: Slot, used: tuple[int, int, float] | None, subject: str | None = None) -> LimitStatus:
    lim = slot.limit
    burst = lim.engine.capacity if lim.kind == "tb" else None  # type: ignore[attr-defined]
    s = LimitStatus(
        scope=slot.scope,
        subject=subject or slot.subject,
        label=f"{slot.scope}:*" if subject == "*" else slot.label,
        unit=slot.unit,
        limit=lim.rate.text,
        amount=lim.rate.amount,
        period_s=lim.rate.period_s,
        algorithm=lim.algorithm,
        burst=burst,
        source=slot.source,
    )
    if used is not None:
        s.used, s.remaining, s.reset_after = used[0], used[1], round(max(0.0, used[2]), 3)
    return s


def _refusal(slot: Slot, v: Verdict, cost: int) -> RateLimited:
    lim = slot.limit
    if math.isinf(v.retry_after):
        return RateLimited(
            f"this call needs about {cost:,} {slot.unit}, more than the whole {slot.unit[:-1]} limit of {slot.label} "
            f"({lim.describe()}); it can never pass as it is: lower max_tokens or shorten the prompt, or raise "
            f"the limit (ax ratelimit set)",
            retry_after=float(lim.rate.period_s),
            limit=lim.rate.amount,
            remaining=v.remaining,
            reset_after=v.reset_after,
            unit=slot.unit,
            scope=slot.label,
        )
    wait = max(0.0, v.retry_after)
    need = f"; this call needs about {cost:,}" if slot.unit == "tokens" else ""
    return RateLimited(
        f"rate limit reached for {slot.label}: {lim.describe()}, {v.remaining:,} left{need} — retry in {wait:.1f}s",
        retry_after=wait,
        limit=lim.rate.amount,
        remaining=v.remaining,
        reset_after=v.reset_after,
        unit=slot.unit,
        scope=slot.label,
    )
