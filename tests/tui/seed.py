"""Seeded, clock-fixed data for the dashboard's tests and snapshots.

Calls over the last two hours on the demo fleet (denser in the last few
minutes), priced with the shipped price sheet, written with their rollups;
live windows fed with the same calls at their own times; budgets, rate
limits, alert rules (one firing) and their events. Same seed, same data,
same pictures.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from axtui.clock import FakeClock
from axtui.config import Settings
from axtui.cost.budgets import Scope, set_budget
from axtui.cost.rollups import RollupHook
from axtui.cost.sheet import PriceSheet
from axtui.engine.compose import build_catalog, effective_providers
from axtui.metrics.alerts.grammar import parse_rule
from axtui.metrics.alerts.state import Transition
from axtui.metrics.alerts.storage import add_rule, record_transition
from axtui.metrics.live import LiveMetrics
from axtui.metrics.shared import SecondsHook
from axtui.store import Call, Store
from axtui.store.recorder import record_to_row
from axtui.store.tables_ratelimit import write_limit
from axtui.tui.data_local import StoreBackend
from axtui.types import CallRecord, Usage

#: The fixed "now" of every seeded test: 2025-06-15 15:06:40 UTC, a Sunday.
NOW = 1_750_000_000.0
USERS = ("alice", "bob", "carol", "dave", "erin")


@dataclass
class Seeded:
    """What a seeded test gets."""

    store: Store
    clock: FakeClock
    settings: Settings
    metrics: LiveMetrics
    records: list[CallRecord]

    def add_calls(self, n: int, seed: int, seconds: float = 60.0) -> list[CallRecord]:
        """``n`` more calls recorded over the last ``seconds`` before now (``seed`` 3 and up: their own ids)."""
        now = self.clock.now()
        records = make_records(now - seconds, seconds - 1, n, seed=seed)
        write_records(self.store, self.clock, records)
        self.records.extend(records)
        return records

    def backend(self) -> StoreBackend:
        """A local backend over the seeded store and windows."""
        return StoreBackend(self.settings, self.clock, store=self.store, metrics=self.metrics)


def write_records(store: Store, clock: FakeClock, records: list[CallRecord]) -> None:
    """Record ``records`` as the gateway's recorder does: the calls and their rollups, in one transaction."""
    hooks: list[Any] = [RollupHook(clock=clock), SecondsHook(clock=clock)]

    def write(conn):  # type: ignore[no-untyped-def]
        conn.execute(insert(Call), [record_to_row(r) for r in records])
        for hook in hooks:
            hook(conn, records)

    store.run(write)


def make_records(start: float, seconds: float, n: int, seed: int) -> list[CallRecord]:
    """``n`` calls spread over ``[start, start + seconds)``, sorted by start time."""
    rng = random.Random(seed)
    settings = effective_providers(Settings())
    catalog = build_catalog(settings)
    prices = PriceSheet.load(settings.prices, include_user=False)
    deployments = [d for d in catalog.deployments if "embed" not in d.upstream_model]
    weights = [8 if d.provider in ("openai", "groq") else 3 for d in deployments]
    out: list[CallRecord] = []
    for i in range(n):
        ts = start + seconds * i / n + rng.random() * 0.5
        dep = rng.choices(deployments, weights)[0]
        user = rng.choice(USERS)
        roll = rng.random()
        status = "ok"
        cache = "miss"
        if roll < 0.04:
            status = "error"
        elif roll < 0.06:
            status = "rate_limited"
        elif roll < 0.30:
            cache = "exact" if roll < 0.22 else "semantic"
        usage = Usage(input_tokens=rng.randint(20, 900), output_tokens=rng.randint(10, 400))
        base = {"groq": 300, "openai": 700, "azure": 1400, "anthropic": 1300, "gemini": 1100, "local": 2600}
        latency = 2.0 if cache != "miss" else base[dep.provider] * (0.6 + rng.random())
        cost = prices.cost(dep, usage) if status == "ok" and cache == "miss" else (0 if status == "ok" else None)
        rec = CallRecord(
            ts=ts, user=user, requested_model=dep.model, status=status,  # type: ignore[arg-type]
            provider=dep.provider if status != "rate_limited" else None,
            model=dep.model if status != "rate_limited" else None,
            deployment=dep.id if status != "rate_limited" else None,
            latency_ms=latency if status != "rate_limited" else 0.0,
            ttft_ms=latency * 0.4 if status == "ok" else None,
            input_tokens=usage.input_tokens if status == "ok" else 0,
            output_tokens=usage.output_tokens if status == "ok" else 0,
            cost_nanos=cost, saved_nanos=prices.cost(dep, usage) if cache != "miss" else None,
            cache=cache,  # type: ignore[arg-type]
            attempts=1 if cache == "miss" and status != "rate_limited" else 0,
            error_class="ProviderUnavailable" if status == "error" else None,
            http_status=503 if status == "error" else None,
            request_id=f"req-{seed}-{i:05d}",
        )
        out.append(rec)
    return out


def seed(tmp: Path, *, template: Path | None = None, n_old: int = 400, n_recent: int = 900,
         now: float = NOW) -> Seeded:
    """A store, windows and settings with seeded calls, budgets, limits and alert rules.

    With ``template`` (a database an earlier `seed` wrote and closed), the
    database is copied from it instead of written again: same data, faster.
    """
    start = now - 2 * 3600
    clock = FakeClock(start)
    settings = effective_providers(Settings())
    old = make_records(start, 2 * 3600 - 600, n_old, seed=1)
    recent = make_records(now - 600, 600 - 2, n_recent, seed=2)
    records = old + recent
    path = tmp / "seeded.db"
    if template is not None:
        shutil.copyfile(template, path)
        store = Store.open(f"sqlite:///{path}")
        clock.advance(now - clock.now())
        return Seeded(store, clock, settings, _live(settings, recent, start, now), records)
    store = Store.open(f"sqlite:///{path}")
    write_records(store, clock, records)
    clock.advance(now - clock.now())
    metrics = _live(settings, recent, start, now)
    tz = settings.budgets.timezone
    set_budget(store, Scope.parse("global"), "day", 25_000_000_000, now=now, tz=tz)
    set_budget(store, Scope.parse("user:alice"), "day", 150_000_000, hard=True, now=now, tz=tz)
    set_budget(store, Scope.parse("provider:anthropic"), "month", 40_000_000_000, now=now, tz=tz)
    write_limit(store, "user", "bob", requests="30/minute", tokens=None, algorithm=None, burst=None, now=now)
    write_limit(store, "user", "carol", requests=None, tokens="50000/minute", algorithm=None, burst=None, now=now)
    slow = add_rule(store, "p95_latency_ms > 1500 for 1m where provider=azure", now=now - 900, name="azure slow",
                    severity="warning")
    add_rule(store, "error_rate > 5% for 5m", now=now - 900, name="errors above 5%", severity="critical")
    add_rule(store, "budget_used_pct >= 80", now=now - 900, severity="warning")
    rule = parse_rule(slow.rule)
    for kind, prev, state, at in (("pending", "ok", "pending", now - 300), ("firing", "pending", "firing", now - 240)):
        t = Transition(kind, prev, state, at, 2240.0)  # type: ignore[arg-type]
        store.run(lambda conn, t=t, slow=slow: record_transition(
            conn, slow, rule, t, f"{t.kind}: azure slow: p95_latency_ms is 2240 ms (> 1500)", "none"))
        slow.state = state
    return Seeded(store, clock, settings, metrics, records)


def _live(settings: Settings, recent: list[CallRecord], start: float, now: float) -> LiveMetrics:
    """Live windows that saw the recent calls end at their own times, read at ``now``."""
    clock = FakeClock(start)
    clock.advance(2 * 3600 - 900)
    metrics = LiveMetrics(settings.metrics, clock=clock)
    for rec in sorted(recent, key=lambda r: r.ts + r.latency_ms / 1000):
        end = rec.ts + rec.latency_ms / 1000
        if end > clock.now():
            clock.advance(end - clock.now())
        metrics.observe(rec)
    clock.advance(now - clock.now())
    return metrics
