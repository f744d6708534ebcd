"""Figures and housekeeping over the stored cache: stats, invalidate, clear.

These work on the store alone, so the CLI, the server's admin API and the
dashboard can use them while a gateway runs elsewhere: `invalidate` and
`clear` bump the ``generation`` counter and move the cache's change marker:
every running cache on this machine drops what it holds in memory before
its next lookup, and caches elsewhere within a second (see
`axtui.cache.persist`).

Hits, misses and saved cost come from the call log (``calls.cache`` and
``calls.saved_nanos``), so they cover every process that served calls;
entries, bytes and the running totals come from the cache tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.engine import Connection

from axtui.cache.persist import cache_marker
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.errors import InvalidRequest
from axtui.money import nanos_to_usd
from axtui.store import Call, Store
from axtui.store.tables_cache import CacheEntry, add_counters, read_counters

__all__ = ["CacheStats", "clear", "invalidate", "stats"]

_T = CacheEntry.__table__  # type: ignore[attr-defined]
_C = Call.__table__  # type: ignore[attr-defined]
_HEX = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(slots=True)
class CacheStats:
    """How the cache did: hits and misses (from the call log) and what it holds."""

    hits: int = 0
    exact_hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    saved_nanos: int = 0
    #: Mean similarity of semantic hits (None without any).
    mean_similarity: float | None = None
    entries: int = 0
    bytes: int = 0
    evictions: int = 0
    expirations: int = 0
    invalidated: int = 0
    corrupt: int = 0
    since: float | None = None
    by_model: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The semantic index as a gateway last saved it (its snapshot): entries, bytes, bytes per entry, when.
    index_entries: int | None = None
    index_bytes: int | None = None
    index_bytes_per_entry: int | None = None
    index_saved_at: float | None = None

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0 when there were none)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    @property
    def saved_usd(self) -> Decimal:
        """The saved cost in dollars, exact."""
        return nanos_to_usd(self.saved_nanos)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (money as an exact decimal string)."""
        return {
            "hits": self.hits,
            "exact_hits": self.exact_hits,
            "semantic_hits": self.semantic_hits,
            "misses": self.misses,
            "hit_rate": round(self.hit_rate, 4),
            "saved_usd": str(self.saved_usd),
            "saved_nanos": self.saved_nanos,
            "mean_similarity": None if self.mean_similarity is None else round(self.mean_similarity, 4),
            "entries": self.entries,
            "bytes": self.bytes,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "invalidated": self.invalidated,
            "corrupt": self.corrupt,
            "since": self.since,
            "by_model": self.by_model,
            "index_entries": self.index_entries,
            "index_bytes": self.index_bytes,
            "index_bytes_per_entry": self.index_bytes_per_entry,
            "index_saved_at": self.index_saved_at,
        }


def stats(store: Store, since: float | None = None) -> CacheStats:
    """Cache figures from the store.

    Args:
        store: the open store.
        since: count hits and misses of calls from this time on (epoch
            seconds); None counts every recorded call. Entries, bytes and
            the running totals are always current.
    """
    out = CacheStats(since=since)
    # Chat completions, Messages and Responses calls go through the cache; embeddings never do.
    conds = [_C.c.endpoint != "embeddings", _C.c.status != "rate_limited",
             _C.c.cache.in_(("miss", "exact", "semantic"))]
    if since is not None:
        conds.append(_C.c.ts >= since)
    stmt = (
        select(_C.c.requested_model, _C.c.cache, func.count(), func.coalesce(func.sum(_C.c.saved_nanos), 0),
               func.sum(_C.c.similarity), func.count(_C.c.similarity))
        .where(*conds)
        .group_by(_C.c.requested_model, _C.c.cache)
    )
    sim_sum, sim_n = 0.0, 0
    with store.engine.connect() as conn:
        for model, kind, n, saved, s_sum, s_n in conn.execute(stmt):
            row = out.by_model.setdefault(model, {"hits": 0, "misses": 0})
            if kind == "miss":
                out.misses += n
                row["misses"] += n
                continue
            out.hits += n
            row["hits"] += n
            out.saved_nanos += int(saved)
            if kind == "exact":
                out.exact_hits += n
            else:
                out.semantic_hits += n
                sim_sum += float(s_sum or 0.0)
                sim_n += int(s_n or 0)
        entries, size = conn.execute(select(func.count(), func.coalesce(func.sum(_T.c.size), 0))).one()
        counters = read_counters(conn)
    out.mean_similarity = sim_sum / sim_n if sim_n else None
    out.entries, out.bytes = int(entries), int(size)
    out.evictions = counters.get("evictions", 0)
    out.expirations = counters.get("expirations", 0)
    out.invalidated = counters.get("invalidated", 0)
    out.corrupt = counters.get("corrupt", 0)
    from axtui.cache.index import snapshot_info  # numpy and the graph library: only when asked

    info = snapshot_info(store)
    if info is not None:
        out.index_entries, out.index_bytes = info.entries, info.bytes
        out.index_bytes_per_entry, out.index_saved_at = info.bytes_per_entry, info.written_at
    return out


def invalidate(
    store: Store,
    *,
    model: str | None = None,
    provider: str | None = None,
    user: str | None = None,
    scope: str | None = None,
    older_than_s: float | None = None,
    key: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """Remove the entries that match every given filter; returns how many.

    Args:
        store: the open store.
        model: entries for this requested model or alias, or answered by this model.
        provider: entries answered by this provider.
        user: entries stored for this user.
        scope: entries of this scope (``user:NAME``, ``key:ID`` or ``global``).
        older_than_s: entries stored more than this many seconds ago.
        key: the entry with this cache key, or every key starting with it (8 hex digits at least).
        clock: the clock ``older_than_s`` counts back from.

    Raises:
        InvalidRequest: no filter was given (use `clear`), or the key is not hexadecimal.
    """
    conds: list[Any] = []
    if model is not None:
        conds.append(or_(_T.c.model == model, _T.c.served_model == model))
    if provider is not None:
        conds.append(_T.c.provider == provider)
    if user is not None:
        conds.append(_T.c.user == user)
    if scope is not None:
        conds.append(_T.c.scope == scope)
    if older_than_s is not None:
        if older_than_s < 0:
            raise InvalidRequest(f"--older-than cannot be negative (got {older_than_s:g}s)")
        conds.append(_T.c.created_at < clock.now() - older_than_s)
    if key is not None:
        k = key.strip().lower()
        if not _HEX.match(k):
            raise InvalidRequest(
                f"cache key {key!r} is not 8 to 64 hexadecimal digits; give the entry's key or its first 8+ digits"
            )
        conds.append(_T.c.key == k if len(k) == 64 else _T.c.key.startswith(k))
    if not conds:
        raise InvalidRequest(
            "say which entries to invalidate (--model, --provider, --user, --scope, --older-than or --key), "
            "or remove every entry with `ax cache clear`"
        )
    return _remove(store, conds)


def clear(store: Store) -> int:
    """Remove every cached entry; returns how many."""
    return _remove(store, [])


def _remove(store: Store, conds: list[Any]) -> int:
    def work(conn: Connection) -> int:
        # Bumped first, even when nothing will match: running caches re-read the store either way,
        # and a cache's writer that read the old generation in its own transaction (a lock on the
        # row, on PostgreSQL) commits before this delete runs, which then removes what it wrote.
        add_counters(conn, {"generation": 1})
        removed = conn.execute(delete(_T).where(*conds)).rowcount or 0
        add_counters(conn, {"invalidated": removed})
        return int(removed)

    removed = store.run(work)
    cache_marker(store).moved()
    return removed
