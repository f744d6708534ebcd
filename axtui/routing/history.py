"""Health from the store: what the router writes, and how it is read back.

A live router learns from every attempt, but only in its own process.
Two things carry that knowledge across processes and restarts:

- the call log: every successful call names its deployment and latency;
- ``route_events``: every attempt that failed on the way (and every
  circuit change), written by `event_writer`, a recorder batch hook, in
  the same transaction as the calls.

`replay` feeds both, in time order, through a `HealthBook` with a clock
set to each row's time, so windows, error rates and circuits come out as
the live router would have had them. `warm` does that for a new gateway;
`health_from_store` for ``ax route status`` in a process with no traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from axtui.clock import Clock
from axtui.config import RoutingConfig
from axtui.errors import StoreError
from axtui.routing.catalog import Catalog
from axtui.routing.health import HealthBook, HealthPolicy, HealthSnapshot, Outcome
from axtui.store import Store
from axtui.store.tables import Call
from axtui.store.tables_routing import RouteEvent
from axtui.types import CallRecord, Deployment, Usage

__all__ = ["Observation", "event_writer", "health_from_store", "load_observations", "load_usage", "replay", "warm"]

log = logging.getLogger(__name__)

#: How far back a new gateway or ``ax route status`` looks, at least.
MIN_LOOKBACK_S = 300.0
#: At most this many rows of each kind are replayed (the newest).
MAX_ROWS = 5_000
#: How far back tokens per call are learned from when a gateway starts.
USAGE_LOOKBACK_S = 7 * 86_400.0
#: Route events older than this are deleted by the writer now and then.
EVENT_RETENTION_S = 30 * 86_400.0
_PRUNE_EVERY_S = 3_600.0
_EVENTS = RouteEvent.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class Observation:
    """One attempt's end, as read back from the store."""

    ts: float
    deployment: str
    provider: str
    model: str
    outcome: Outcome
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    output_tokens: int = 0
    retry_after: float | None = None
    error: str | None = None
    learn: bool = True
    #: What a successful call reported (the cost strategy's tokens per call).
    usage: Usage | None = None


class _ReplayClock:
    """A clock at a chosen past wall time, mapped onto a live clock's monotonic frame."""

    def __init__(self, live: Clock) -> None:
        self.base_wall = live.now()
        self.base_mono = live.monotonic()
        self.t = self.base_wall

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.base_mono - (self.base_wall - self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def load_observations(store: Store, since: float, limit: int = MAX_ROWS) -> list[Observation]:
    """Successful calls and failed attempts since ``since`` (epoch seconds), oldest first."""
    c = Call.__table__.c  # type: ignore[attr-defined]
    e = _EVENTS.c
    calls = (
        select(c.ts, c.deployment, c.provider, c.model, c.latency_ms, c.ttft_ms, c.output_tokens, c.attempts,
               c.input_tokens, c.cached_input_tokens, c.cache_write_tokens, c.reasoning_tokens, c.usage_estimated)
        .where(c.ts >= since, c.status == "ok", c.cache == "miss", c.deployment.is_not(None))
        .order_by(c.ts.desc())
        .limit(limit)
    )
    events = (
        select(e.ts, e.deployment, e.kind, e.error_class, e.latency_ms, e.retry_after, e.detail)
        .where(e.ts >= since, e.kind.in_(("failure", "rate_limited")))
        .order_by(e.ts.desc())
        .limit(limit)
    )
    out: list[Observation] = []
    with store.connect() as conn:
        for r in conn.execute(calls):
            provider, _, upstream = str(r.deployment).partition("/")
            out.append(Observation(
                ts=r.ts + (r.latency_ms or 0.0) / 1000.0,
                deployment=r.deployment,
                provider=r.provider or provider,
                model=r.model or upstream,
                outcome="ok",
                latency_ms=r.latency_ms or 0.0,
                ttft_ms=r.ttft_ms,
                output_tokens=r.output_tokens or 0,
                # A call that needed several attempts took longer than its last attempt did.
                learn=(r.attempts or 1) <= 1,
                # Tokens ax counted itself (the provider reported none) say nothing of the deployment.
                usage=None if r.usage_estimated else Usage(
                    input_tokens=r.input_tokens or 0, output_tokens=r.output_tokens or 0,
                    cached_input_tokens=r.cached_input_tokens or 0, cache_write_tokens=r.cache_write_tokens or 0,
                    reasoning_tokens=r.reasoning_tokens or 0),
            ))
        for ev in conn.execute(events):
            provider, _, upstream = str(ev.deployment).partition("/")
            out.append(Observation(
                ts=ev.ts,
                deployment=ev.deployment,
                provider=provider,
                model=upstream,
                outcome="fault" if ev.kind == "failure" else "rate_limited",
                latency_ms=ev.latency_ms or 0.0,
                retry_after=ev.retry_after,
                error=f"{ev.error_class}: {ev.detail}" if ev.error_class else ev.detail,
            ))
    out.sort(key=lambda o: o.ts)
    return out


def replay(book: HealthBook, observations: Iterable[Observation], catalog: Catalog | None = None) -> int:
    """Feed stored observations through ``book`` at their own times; returns how many.

    Deployments the catalog lacks are added under their recorded names.
    Circuit listeners are not told about replayed changes (they happened
    before); the book's transition history keeps them.
    """
    live = book.clock
    clock = _ReplayClock(live)
    listeners, book.listeners = book.listeners, []
    book.use_clock(clock)
    n = 0
    try:
        for o in observations:
            if o.ts > clock.base_wall:
                continue
            dep = catalog.get(o.deployment) if catalog is not None else None
            if dep is None:
                dep = Deployment(provider=o.provider, model=o.model, upstream_model=o.model)
            clock.t = o.ts
            book.get(dep).end(o.outcome, o.latency_ms, o.ttft_ms, o.output_tokens, o.retry_after, o.error,
                              started=False, learn=o.learn)
            if o.outcome == "ok":
                book.note_output(o.output_tokens)
                if o.usage is not None:
                    book.usage.add(dep.id, o.usage)
            n += 1
    finally:
        book.use_clock(live)
        book.listeners = listeners
    return n


def _lookback(routing: RoutingConfig) -> float:
    return max(MIN_LOOKBACK_S, routing.window_s * 2, routing.circuit_cooldown_s * 2)


def load_usage(store: Store, since: float, until: float, limit: int = MAX_ROWS) -> list[tuple[str, Usage]]:
    """(deployment id, reported usage) of successful upstream calls in ``[since, until)``, oldest first."""
    c = Call.__table__.c  # type: ignore[attr-defined]
    rows = (
        select(c.deployment, c.input_tokens, c.cached_input_tokens, c.cache_write_tokens, c.output_tokens,
               c.reasoning_tokens)
        .where(c.ts >= since, c.ts < until, c.status == "ok", c.cache == "miss", c.deployment.is_not(None),
               c.usage_estimated.is_(False))
        .order_by(c.ts.desc())
        .limit(limit)
    )
    with store.connect() as conn:
        out = [(str(r.deployment), Usage(input_tokens=r.input_tokens or 0, output_tokens=r.output_tokens or 0,
                                         cached_input_tokens=r.cached_input_tokens or 0,
                                         cache_write_tokens=r.cache_write_tokens or 0,
                                         reasoning_tokens=r.reasoning_tokens or 0))
               for r in conn.execute(rows)]
    out.reverse()
    return out


def warm(book: HealthBook, store: Store, catalog: Catalog, routing: RoutingConfig) -> int:
    """Fill a new book with the recent past from the store; 0 when the store cannot say.

    Health comes from the last few windows; tokens per call (the cost
    strategy's history) from up to `USAGE_LOOKBACK_S` back.
    """
    now = book.clock.now()
    since = now - _lookback(routing)
    try:
        older = load_usage(store, now - USAGE_LOOKBACK_S, since)
        obs = load_observations(store, since)
    except StoreError as exc:
        log.warning("routing: starting without health history: %s", exc.message)
        return 0
    for dep_id, usage in older:
        book.usage.add(dep_id, usage)
    return replay(book, obs, catalog)


def health_from_store(
    store: Store, catalog: Catalog, routing: RoutingConfig, clock: Clock, since_s: float | None = None
) -> list[HealthSnapshot]:
    """Each deployment's health as the recent call log and route events tell it.

    Nothing is in flight in a process that serves no calls, so ``in_flight``
    is 0; every catalog deployment is listed, heard from or not.
    """
    book = HealthBook(HealthPolicy.from_config(routing), clock, catalog.deployments)
    lookback = since_s if since_s is not None else _lookback(routing)
    replay(book, load_observations(store, clock.now() - lookback), catalog)
    return book.snapshot()


class event_writer:  # used like a function: recorder.add_hook(event_writer(router, clock))
    """A recorder batch hook writing the router's pending events to ``route_events``.

    Runs on the recorder's thread inside each batch's transaction; events
    are taken from the router's queue as they are written, and events older
    than `EVENT_RETENTION_S` are pruned about once an hour.
    """

    def __init__(self, source: Any, clock: Clock) -> None:
        self.source = source
        self.clock = clock
        self._pruned_at = 0.0

    def __call__(self, conn: Connection, records: Sequence[CallRecord]) -> None:
        events = self.source.events
        rows: list[dict[str, Any]] = []
        while events:
            try:
                rows.append(asdict(events.popleft()))
            except IndexError:
                break
        if rows:
            conn.execute(insert(_EVENTS), rows)
        now = self.clock.now()
        if now - self._pruned_at >= _PRUNE_EVERY_S:
            self._pruned_at = now
            conn.execute(delete(_EVENTS).where(_EVENTS.c.ts < now - EVENT_RETENTION_S))
