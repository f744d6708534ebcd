"""Live metrics: per-second windows of every call, fed from the event bus.

`LiveMetrics` subscribes to the bus's `CallRecorded` events and counts each call
in one-second slots over the last 15 minutes (``metrics.window_s``),
overall and per provider, deployment, model and user: requests, errors,
rate-limited and budget-refused calls, cache hits, tokens, exact spend and
latency/TTFT histograms. `LiveMetrics.snapshot` returns what a screen
draws (totals, sparkline series, table rows, the recent calls) as plain
dataclasses that serialise to JSON; `LiveMetrics.stats` answers one key
over any window (the alert evaluator uses it).

Users are counted in coarser slots (``metrics.user_slot_s``) and at most
``metrics.max_users`` of them, the idlest forgotten first, so a gateway
with many end users keeps flat memory.

A dashboard over several processes uses a `LiveMetrics` whose source is
the store instead of the bus (see `axtui.metrics.shared`): the same
windows, filled from every process's per-second rollups.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from decimal import Decimal

from axtui.bus import CallRecorded, Event, EventBus, Subscription
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import MetricsConfig
from axtui.metrics.snapshot import RecentCall, Series, Snapshot, Stats
from axtui.metrics.windows import Observation, Slot, Track, observe_record
from axtui.money import NANOS_PER_USD, nanos_to_usd
from axtui.types import CallRecord

__all__ = ["LIVE_DIMENSIONS", "LiveMetrics", "recent_call", "stats_of"]

#: The dimensions tracked per key, besides the overall totals.
LIVE_DIMENSIONS: tuple[str, ...] = ("provider", "deployment", "model", "user")


def recent_call(rec: CallRecord) -> RecentCall:
    """A call record as a line of the live log."""
    return RecentCall(
        ts=rec.ts,
        user=rec.user,
        requested_model=rec.requested_model,
        status=rec.status,
        provider=rec.provider,
        model=rec.model,
        deployment=rec.deployment,
        latency_ms=rec.latency_ms,
        ttft_ms=rec.ttft_ms,
        input_tokens=rec.input_tokens,
        output_tokens=rec.output_tokens,
        cost_usd=None if rec.cost_nanos is None else nanos_to_usd(rec.cost_nanos),
        cache=rec.cache,
        error_class=rec.error_class,
        request_id=rec.request_id,
    )


def stats_of(slot: Slot, key: str, seconds: float, last_seen: float | None = None) -> Stats:
    """`Stats` of an aggregated slot covering ``seconds``."""
    secs = max(seconds, 1.0)
    served = slot.ok + slot.errors
    p50, p95, p99 = slot.latency.quantiles((0.5, 0.95, 0.99))
    t50, t95 = slot.ttft.quantiles((0.5, 0.95))
    tokens = slot.input_tokens + slot.output_tokens
    return Stats(
        key=key,
        seconds=secs,
        requests=slot.requests,
        ok=slot.ok,
        errors=slot.errors,
        rate_limited=slot.rate_limited,
        budget_refused=slot.budget_refused,
        cancelled=slot.cancelled,
        cache_hits=slot.cache_hits,
        input_tokens=slot.input_tokens,
        output_tokens=slot.output_tokens,
        cost_nanos=slot.cost_nanos,
        unknown_cost=slot.unknown_cost,
        rps=slot.requests / secs,
        error_rate=slot.errors / slot.requests if slot.requests else None,
        cache_hit_rate=slot.cache_hits / served if served else None,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        mean_ms=slot.latency.mean(),
        ttft_p50_ms=t50,
        ttft_p95_ms=t95,
        cost_usd=nanos_to_usd(slot.cost_nanos),
        cost_per_min_usd=_per_minute_usd(slot.cost_nanos, secs),
        tokens_per_min=tokens * 60 / secs,
        last_seen=last_seen if last_seen is not None else slot.last_seen,
    )


def _per_minute_usd(nanos: int, seconds: float) -> Decimal:
    if not nanos:
        return Decimal(0)
    # Exact to the nano-dollar: the rounding happens once, at the end.
    per_min = (Decimal(nanos) * 60 / Decimal(repr(seconds))).quantize(Decimal(1))
    return (per_min / NANOS_PER_USD).normalize()


class LiveMetrics:
    """In-memory windows of every call this process (or the store) has seen.

    Thread-safe: the bus may publish from the event loop while a dashboard
    worker thread takes snapshots.

    Args:
        config: window sizes and limits (``settings.metrics``).
        clock: the time source; calls are counted at the moment they arrive.
        source: ``local`` (fed from this process's bus) or ``store``.
    """

    def __init__(
        self, config: MetricsConfig | None = None, *, clock: Clock = SYSTEM_CLOCK, source: str = "local"
    ) -> None:
        self.config = config or MetricsConfig()
        self.clock = clock
        self.source = source
        self._lock = threading.Lock()
        now = clock.now()
        self.started = now
        cfg = self.config
        self._all = Track(1, cfg.window_s, cfg.recent_s, now)
        self._lifetime = Slot()
        self._dims: dict[str, dict[str, Track]] = {d: {} for d in LIVE_DIMENSIONS}
        self._filtered: dict[tuple[tuple[str, str], ...], Track] = {}
        self._recent: deque[CallRecord | RecentCall] = deque(maxlen=cfg.recent_calls)
        self._subscription: Subscription | None = None

    # -- feeding ---------------------------------------------------------------------------

    def attach(self, bus: EventBus) -> Subscription:
        """Count every call published on ``bus`` from now on."""
        self._subscription = bus.subscribe(self.handle)
        return self._subscription

    def detach(self) -> None:
        """Stop counting calls from the bus."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def handle(self, event: Event) -> None:
        """A bus handler: counts calls, ignores the rest."""
        if isinstance(event, CallRecorded):
            self.observe(event.record)

    def observe(self, rec: CallRecord, at: float | None = None) -> None:
        """Count one call, at ``at`` (default: now)."""
        at = self.clock.now() if at is None else at
        o = observe_record(rec)
        dims = self._dims
        with self._lock:
            self._all.add(o, at)
            self._lifetime.add(o, at)
            for dim, key in (
                ("provider", rec.provider), ("deployment", rec.deployment), ("model", rec.model), ("user", rec.user),
            ):  # fmt: skip
                if key is None:
                    continue
                track = dims[dim].get(key)
                if track is None:
                    track = self._new_dim_track(dim, key, at)
                track.add(o, at)
            if self._filtered:
                self._add_filtered(rec, o, at)
            self._recent.append(rec)

    def _new_dim_track(self, dim: str, key: str, at: float) -> Track:
        tracks = self._dims[dim]
        track = tracks[key] = self._new_track(dim, at)
        if dim == "user" and len(tracks) > self.config.max_users:
            self._forget_idle_users()
            tracks[key] = track  # the newest user always stays
        return track

    def _add_filtered(self, rec: CallRecord, o: Observation, at: float) -> None:
        for filters, track in self._filtered.items():
            if all(getattr(rec, dim) == value for dim, value in filters):
                track.add(o, at)

    def _new_track(self, dim: str, now: float) -> Track:
        cfg = self.config
        if dim == "user":
            slot_s = cfg.user_slot_s
            return Track(slot_s, max(1, -(-cfg.window_s // slot_s)), max(1, cfg.recent_s // slot_s), now)
        return Track(1, cfg.window_s, cfg.recent_s, now)

    def _forget_idle_users(self) -> None:
        # Drop the idlest tenth at once, so a steady stream of new users costs
        # one sort per max_users/10 arrivals rather than one scan per arrival.
        users = self._dims["user"]
        drop = max(1, len(users) - self.config.max_users + self.config.max_users // 10)
        for key, _ in sorted(users.items(), key=lambda kv: kv[1].seen or 0.0)[:drop]:
            del users[key]

    def ingest(self, at_second: int, dim: str, key: str, slot: Slot) -> None:
        """Add a stored per-second rollup (``dim`` ``all`` is the overall row)."""
        at = float(at_second)
        with self._lock:
            if dim == "all":
                if self._all.merge_slot(self._all.index(at), slot):
                    self._lifetime.merge(slot)
                return
            tracks = self._dims.get(dim)
            if tracks is None:
                return
            track = tracks.get(key)
            if track is None:
                track = tracks[key] = self._new_track(dim, at)
            track.merge_slot(track.index(at), slot)

    def add_recent(self, call: RecentCall) -> None:
        """Append a line to the recent-calls log (stored calls, in the store mode)."""
        with self._lock:
            self._recent.append(call)

    def watch(self, filters: Mapping[str, str]) -> None:
        """Start counting calls that match every filter (a multi-dimension alert rule).

        Calls seen before the watch began are not in it.
        """
        key = tuple(sorted(filters.items()))
        if len(key) < 2:
            return
        with self._lock:
            if key not in self._filtered:
                self._filtered[key] = Track(1, self.config.window_s, self.config.recent_s, self.clock.now())

    def unwatch(self, filters: Mapping[str, str]) -> None:
        """Stop counting a filter set started by `watch`."""
        with self._lock:
            self._filtered.pop(tuple(sorted(filters.items())), None)

    # -- reading ---------------------------------------------------------------------------

    def stats(self, filters: Mapping[str, str] | None = None, window_s: int | None = None) -> Stats:
        """Aggregates of the calls matching ``filters`` over the last ``window_s`` seconds.

        ``filters`` maps dimensions (provider, deployment, model, user) to
        values; with two or more, the filter set must have been `watch`-ed.
        An unknown key gives empty stats, not an error: no calls yet.
        """
        now = self.clock.now()
        window_s = self.config.recent_s if window_s is None else min(window_s, self.config.window_s)
        items = tuple(sorted((filters or {}).items()))
        with self._lock:
            if not items:
                track: Track | None = self._all
            elif len(items) == 1:
                dim, value = items[0]
                track = self._dims.get(dim, {}).get(value)
            else:
                track = self._filtered.get(items)
            label = ",".join(f"{k}={v}" for k, v in items)
            if track is None:
                return Stats(key=label, seconds=float(window_s))
            return self._track_stats(track, label, now, window_s)

    def _track_stats(self, track: Track, key: str, now: float, window_s: int) -> Stats:
        slot_s = track.slot_s
        n = max(1, window_s // slot_s)
        head = int(now // slot_s)
        agg = track.window(head, n)
        start = max((head - min(n, track.n) + 1) * slot_s, self.started)
        return stats_of(agg, key, now - start, track.seen)

    def snapshot(self, *, series_s: int | None = None, top_users: int = 20, recent: int | None = None) -> Snapshot:
        """Everything a live screen needs, now.

        Args:
            series_s: seconds of per-second series (default: the whole window).
            top_users: how many users to list (the busiest in the recent window).
            recent: how many recent calls to include (default: all kept).
        """
        now = self.clock.now()
        cfg = self.config
        series_s = cfg.window_s if series_s is None else max(1, min(series_s, cfg.window_s))
        with self._lock:
            totals = self._track_stats(self._all, "", now, cfg.recent_s)
            lifetime = stats_of(self._lifetime, "", now - self.started, self._all.seen)
            series = self._series(now, series_s)
            rows: dict[str, list[Stats]] = {}
            for dim, tracks in self._dims.items():
                if dim == "user":
                    self._forget_gone_users(now)
                    # Rank by the cheap count first; full stats only for the users shown.
                    busiest = sorted(
                        tracks.items(), key=lambda kv: (-kv[1].recent_requests(int(now // kv[1].slot_s)), kv[0])
                    )[:top_users]
                    rows[dim] = [self._track_stats(t, key, now, cfg.recent_s) for key, t in busiest]
                else:
                    rows[dim] = [self._track_stats(tracks[key], key, now, cfg.recent_s) for key in sorted(tracks)]
            calls = list(self._recent)
        if recent is not None:
            calls = calls[-recent:] if recent else []
        return Snapshot(
            at=now,
            window_s=cfg.window_s,
            recent_s=cfg.recent_s,
            started=self.started,
            totals=totals,
            lifetime=lifetime,
            series=series,
            providers=rows["provider"],
            deployments=rows["deployment"],
            models=rows["model"],
            users=rows["user"],
            recent=[c if isinstance(c, RecentCall) else recent_call(c) for c in calls],
            alerts=[],
            source=self.source,
        )

    def user_snapshot(self, user: str, *, series_s: int | None = None, recent: int | None = None) -> Snapshot:
        """What one tenant may see: the calls of ``user`` and of its namespace (``user/…``) only.

        Totals and series sum those users' windows (in ``metrics.user_slot_s``
        steps); ``lifetime`` covers the whole window; per provider, deployment
        and model rows, which would show everyone's traffic, are left out.
        """
        now = self.clock.now()
        cfg = self.config
        series_s = cfg.window_s if series_s is None else max(1, min(series_s, cfg.window_s))
        prefix = user + "/"
        with self._lock:
            owned = sorted((k, t) for k, t in self._dims["user"].items() if k == user or k.startswith(prefix))
            tracks = [t for _, t in owned]
            totals = self._sum_stats(tracks, now, cfg.recent_s)
            lifetime = self._sum_stats(tracks, now, cfg.window_s)
            users = [self._track_stats(t, key, now, cfg.recent_s) for key, t in owned]
            series = self._user_series(tracks, now, series_s)
            calls = [c for c in self._recent if c.user == user or c.user.startswith(prefix)]
        if recent is not None:
            calls = calls[-recent:] if recent else []
        return Snapshot(
            at=now, window_s=cfg.window_s, recent_s=cfg.recent_s, started=self.started, totals=totals,
            lifetime=lifetime, series=series, users=users,
            recent=[c if isinstance(c, RecentCall) else recent_call(c) for c in calls], source=self.source,
        )

    def _sum_stats(self, tracks: list[Track], now: float, window_s: int) -> Stats:
        slot_s = self.config.user_slot_s
        n = max(1, window_s // slot_s)
        agg = Slot()
        seen = None
        for track in tracks:
            agg.merge(track.window(int(now // slot_s), n))
            if track.seen is not None and (seen is None or track.seen > seen):
                seen = track.seen
        start = max((int(now // slot_s) - n + 1) * slot_s, self.started)
        return stats_of(agg, "", now - start, seen)

    def _user_series(self, tracks: list[Track], now: float, seconds: int) -> Series:
        slot_s = self.config.user_slot_s
        head = int(now // slot_s)
        first = head - max(1, seconds // slot_s) + 1
        s = Series(start=first * slot_s, step_s=slot_s)
        for track in tracks:
            track.advance(head)
        for i in range(first, head + 1):
            slot = Slot()
            for track in tracks:
                got = track.get(i)
                if got is not None:
                    slot.merge(got)
            s.requests.append(slot.requests)
            s.errors.append(slot.errors)
            s.rate_limited.append(slot.rate_limited)
            s.budget_refused.append(slot.budget_refused)
            s.cache_hits.append(slot.cache_hits)
            s.served.append(slot.ok + slot.errors)
            s.tokens.append(slot.input_tokens + slot.output_tokens)
            s.cost_nanos.append(slot.cost_nanos)
            a, b, c, d = slot.quantile_point() if slot.requests else (None, None, None, None)
            s.p50_ms.append(a)
            s.p95_ms.append(b)
            s.p99_ms.append(c)
            s.ttft_ms.append(d)
        return s

    def _forget_gone_users(self, now: float) -> None:
        users = self._dims["user"]
        gone = now - self.config.window_s
        for key in [k for k, t in users.items() if (t.seen or 0.0) < gone]:
            del users[key]

    def _series(self, now: float, seconds: int) -> Series:
        track = self._all
        head = int(now)
        track.advance(head)
        first = head - seconds + 1
        s = Series(start=first, step_s=1)
        req, err, rl, br, hits, served, tok, cost = (
            s.requests,
            s.errors,
            s.rate_limited,
            s.budget_refused,
            s.cache_hits,
            s.served,
            s.tokens,
            s.cost_nanos,
        )
        p50, p95, p99, ttft = s.p50_ms, s.p95_ms, s.p99_ms, s.ttft_ms
        for i in range(first, head + 1):
            slot = track.get(i)
            if slot is None or not slot.requests:
                req.append(0)
                err.append(0)
                rl.append(0)
                br.append(0)
                hits.append(0)
                served.append(0)
                tok.append(0)
                cost.append(0)
                p50.append(None)
                p95.append(None)
                p99.append(None)
                ttft.append(None)
                continue
            req.append(slot.requests)
            err.append(slot.errors)
            rl.append(slot.rate_limited)
            br.append(slot.budget_refused)
            hits.append(slot.cache_hits)
            served.append(slot.ok + slot.errors)
            tok.append(slot.input_tokens + slot.output_tokens)
            cost.append(slot.cost_nanos)
            a, b, c, d = slot.quantile_point()
            p50.append(a)
            p95.append(b)
            p99.append(c)
            ttft.append(d)
        return s
