"""Reading recorded calls for what-if replay (`axtui.routing.whatif`), kept apart from its pure logic."""

from __future__ import annotations

from sqlalchemy import select

from axtui.routing.history import Observation
from axtui.routing.whatif import RecordedCall
from axtui.store import Store
from axtui.store.tables import Call
from axtui.store.tables_routing import RouteEvent
from axtui.types import Usage

__all__ = ["MAX_CALLS", "load_failures", "load_recorded_calls"]

#: At most this many calls are replayed (the newest); the report says when more were recorded.
MAX_CALLS = 500_000
_EVENTS = RouteEvent.__table__  # type: ignore[attr-defined]


def load_recorded_calls(store: Store, since: float, until: float | None = None,
                        limit: int = MAX_CALLS) -> tuple[list[RecordedCall], bool]:
    """Chat calls (every endpoint but embeddings) recorded in ``[since, until)``, oldest first, and whether ``limit`` cut older ones off."""
    c = Call.__table__.c  # type: ignore[attr-defined]
    query = (
        select(c.ts, c.user, c.key, c.tags, c.requested_model, c.status, c.deployment, c.provider, c.model,
               c.latency_ms, c.input_tokens, c.cached_input_tokens, c.cache_write_tokens, c.output_tokens,
               c.reasoning_tokens, c.usage_estimated, c.cost_nanos, c.saved_nanos, c.cache, c.similarity, c.route,
               c.rule, c.prompt_hash)
        .where(c.ts >= since, c.endpoint != "embeddings")
        .order_by(c.ts.desc())
        .limit(limit + 1)
    )
    if until is not None:
        query = query.where(c.ts < until)
    out: list[RecordedCall] = []
    with store.connect() as conn:
        for r in conn.execute(query):
            out.append(RecordedCall(
                ts=r.ts, user=r.user, requested_model=r.requested_model, status=r.status,
                usage=Usage(input_tokens=r.input_tokens or 0, output_tokens=r.output_tokens or 0,
                            cached_input_tokens=r.cached_input_tokens or 0,
                            cache_write_tokens=r.cache_write_tokens or 0, reasoning_tokens=r.reasoning_tokens or 0,
                            estimated=bool(r.usage_estimated)),
                latency_ms=r.latency_ms or 0.0, cost_nanos=r.cost_nanos, saved_nanos=r.saved_nanos,
                deployment=r.deployment, provider=r.provider, model=r.model, cache=r.cache or "miss",
                similarity=r.similarity, strategy=r.route, rule=r.rule, key=r.key,
                tags=tuple(t for t in (r.tags or "").split(",") if t), conversation=r.prompt_hash,
            ))
    cut = len(out) > limit
    del out[limit:]
    out.reverse()
    return out, cut


def load_failures(store: Store, since: float, until: float | None = None, limit: int = MAX_CALLS) -> list[Observation]:
    """Failed attempts and 429s recorded in ``[since, until)``, oldest first (circuits and cooldowns in replay)."""
    e = _EVENTS.c
    query = (
        select(e.ts, e.deployment, e.kind, e.error_class, e.latency_ms, e.retry_after, e.detail)
        .where(e.ts >= since, e.kind.in_(("failure", "rate_limited")))
        .order_by(e.ts.desc())
        .limit(limit)
    )
    if until is not None:
        query = query.where(e.ts < until)
    out: list[Observation] = []
    with store.connect() as conn:
        for ev in conn.execute(query):
            provider, _, upstream = str(ev.deployment).partition("/")
            out.append(Observation(
                ts=ev.ts, deployment=ev.deployment, provider=provider, model=upstream,
                outcome="fault" if ev.kind == "failure" else "rate_limited", latency_ms=ev.latency_ms or 0.0,
                retry_after=ev.retry_after, error=f"{ev.error_class}: {ev.detail}" if ev.error_class else ev.detail,
            ))
    out.reverse()
    return out
