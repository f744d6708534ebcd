"""Three `ax serve` replicas on one PostgreSQL and one Redis (scripts/replicas.py starts them).

Across the replicas: a hard budget holds, a rate limit holds within 1 %, an
answer cached on one is a hit on the others, `ax cost summary` equals the
calls served, every replica's metrics API shows fleet-wide totals, and a
replica killed with SIGKILL under load loses none of the calls the others
acknowledged while its budget room comes back within the lease.

Skipped when neither PostgreSQL and Redis nor AX_TEST_POSTGRES_URL and
AX_TEST_REDIS_URL are at hand.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from axtui.store import Store

pytestmark = [pytest.mark.processes, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(150)]

LEASE_S = 3.0
#: Longer than the tests run: a budget change reaches the replicas through its marker, or not at all.
REFRESH_S = 600.0
CONFIG = f"""\
[[providers]]
name = "openai"
kind = "sim"
profile = "fast"
models = ["gpt-4o-mini", "gpt-4o"]

[ratelimit]
user_requests = "100/hour"

[budgets]
lease_s = {LEASE_S}
refresh_s = {REFRESH_S}

# Live totals cover every call of the module, however long a loaded machine takes to run it.
[metrics]
recent_s = 900
"""


def _script() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "replicas.py"
    spec = importlib.util.spec_from_file_location("ax_replicas_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


replicas = _script()


class Served:
    """Every answer the fleet acknowledged: (replica, request id, cost in dollars)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, Decimal]] = []

    def add(self, replica: int, answer: httpx.Response) -> None:
        if answer.status_code == 200:
            cost = answer.headers.get("x-ax-cost-usd")
            self.calls.append((replica, answer.json()["id"], Decimal(cost) if cost else Decimal(0)))


@pytest.fixture(scope="module")
def fleet() -> Iterator[Any]:
    why = replicas.Services.available()
    if why:
        pytest.skip(why)
    # One user per call where limits are not the point: the per-user limit then never bites.
    fleet = replicas.Fleet(3, config=CONFIG)
    try:
        fleet.start()
    except Exception:
        fleet.stop()
        raise
    fleet.served = Served()
    yield fleet
    fleet.stop()


def body(model: str, prompt: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 50, "user": user, "messages": [{"role": "user", "content": prompt}], **extra}


async def fire(fleet: Any, bodies: list[dict[str, Any]], replicas_up: list[int] | None = None) -> list[tuple[int, Any]]:
    """Send ``bodies`` at once, spread over the replicas; (replica, answer or error) each."""
    up = replicas_up or list(range(len(fleet.urls)))
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=400)) as client:
        async def one(i: int, b: dict[str, Any]) -> tuple[int, Any]:
            r = up[i % len(up)]
            try:
                answer = await client.post(f"{fleet.urls[r]}/v1/chat/completions", json=b)
            except httpx.TransportError as exc:
                return r, exc
            fleet.served.add(r, answer)
            return r, answer

        return await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))


def pg(fleet: Any) -> Store:
    return Store.open(fleet.services.postgres_url)


def test_a_hard_budget_holds_across_three_replicas(fleet: Any) -> None:
    (_, warm), = asyncio.run(fire(fleet, [body("gpt-4o", "warm up: say hello", "budget-warm")]))
    cost = Decimal(warm.headers["x-ax-cost-usd"])
    limit = cost * 20
    fleet.ax("cost", "budget", "set", str(limit), "--scope", "model:gpt-4o", "--period", "day", "--hard")
    # No wait: the replicas share this machine (and its data directory), so the change's marker
    # makes each read the budgets again before its next call (README, "Budgets").
    answers = asyncio.run(fire(fleet, [body("gpt-4o", f"tell me about the {w} number", f"b{i}")
                                       for i, w in enumerate(_words(200))]))
    ok = [a for _, a in answers if isinstance(a, httpx.Response) and a.status_code == 200
          and a.headers["x-ax-cache"] == "miss"]  # a cached answer costs nothing and reserves nothing
    hits = [a for _, a in answers if isinstance(a, httpx.Response) and a.status_code == 200 and a not in ok]
    refused = [a for _, a in answers if isinstance(a, httpx.Response) and a.status_code == 402]
    assert len(ok) + len(hits) + len(refused) == 200, {getattr(a, "status_code", repr(a)) for _, a in answers}
    costs = [Decimal(a.headers["x-ax-cost-usd"]) for a in ok]
    # Admission is exact: never more calls than the room holds. What they spend may pass the
    # limit only by the estimates' error (each call reserves ax's estimate of its prompt, and
    # the upstream counts its prompt a few tokens longer), which is less than one call's cost.
    assert 0 < len(ok) <= 20, (len(ok), limit)
    assert sum(costs) <= limit + max(costs), (len(ok), sum(costs), limit)


def test_a_rate_limit_holds_within_one_percent_across_replicas(fleet: Any) -> None:
    answers = asyncio.run(fire(fleet, [body("gpt-4o-mini", f"limited question {w}", "limited")
                                       for w in _words(300)]))
    codes = [a.status_code for _, a in answers if isinstance(a, httpx.Response)]
    assert len(codes) == 300
    assert 99 <= codes.count(200) <= 101 and codes.count(429) == 300 - codes.count(200)


def test_an_answer_cached_on_one_replica_is_a_hit_on_the_others(fleet: Any) -> None:
    same = body("gpt-4o-mini", "what is the capital of france", "cached", temperature=0)
    with httpx.Client(timeout=30) as client:
        first = client.post(f"{fleet.urls[0]}/v1/chat/completions", json=same)
        assert first.headers["x-ax-cache"] == "miss"
        fleet.served.add(0, first)
        deadline = time.monotonic() + 10
        kinds: list[str] = []
        while time.monotonic() < deadline:
            kinds = []
            for r in (1, 2):
                answer = client.post(f"{fleet.urls[r]}/v1/chat/completions", json=same)
                fleet.served.add(r, answer)
                kinds.append(answer.headers["x-ax-cache"])
            if kinds == ["exact", "exact"]:
                break
            time.sleep(0.2)
        assert kinds == ["exact", "exact"]
        assert answer.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]


def test_cost_summary_and_every_replicas_metrics_show_the_whole_fleet(fleet: Any) -> None:
    served = fleet.served.calls
    expected = sum(c for _, _, c in served)
    deadline = time.monotonic() + 15
    while True:
        summary = json.loads(fleet.ax("cost", "summary", "--json").stdout)
        if Decimal(summary["total_usd"]) == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    store = pg(fleet)
    try:
        n, nanos = store.run(lambda c: c.execute(text("SELECT count(*), sum(cost_nanos) FROM calls")).one())
    finally:
        store.close()
    assert Decimal(summary["total_usd"]) == expected, (summary, n, nanos, len(served))
    # Each replica's live snapshot counts the whole fleet's calls (from the shared store), not its own.
    mine = max(sum(1 for r, _, _ in served if r == i) for i in range(3))
    counts: list[int] = []
    # They may differ by a call or two: each reads a moving window at its own moment.
    while time.monotonic() < deadline + 10:
        counts = [httpx.get(f"{url}/api/metrics/realtime", timeout=10).json()["totals"]["requests"]
                  for url in fleet.urls]
        if max(counts) - min(counts) <= 2 and min(counts) > mine:
            break
        time.sleep(0.3)
    assert max(counts) - min(counts) <= 2 and min(counts) > mine, (counts, mine)


def test_a_replica_killed_under_load_loses_no_acknowledged_call_and_its_room_returns(fleet: Any) -> None:
    fleet.ax("cost", "budget", "set", "1000", "--scope", "model:gpt-4o-mini", "--period", "day", "--hard")
    victim = fleet.procs[2].pid
    before = len(fleet.served.calls)

    async def load() -> list[tuple[int, Any]]:
        task = asyncio.ensure_future(fire(fleet, [body("gpt-4o-mini", f"load question {w}", f"k{i}")
                                                  for i, w in enumerate(_words(240))]))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(fleet.kill, 2)
        return await task

    answers = asyncio.run(load())
    acknowledged = [rid for r, rid, _ in fleet.served.calls[before:] if r != 2]
    assert len(acknowledged) >= 100, {getattr(a, "status_code", repr(a)) for _, a in answers}
    store = pg(fleet)
    try:
        deadline = time.monotonic() + 10
        while True:
            ids = set(store.run(lambda c: c.execute(text("SELECT request_id FROM calls")).scalars().all()))
            missing = [rid for rid in acknowledged if rid not in ids]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert not missing, f"{len(missing)} acknowledged calls were not recorded"
        # The survivors keep serving; the victim's budget room comes back within the lease.
        # Every round asks new questions: cached answers take no budget room, and a survivor
        # only takes back a dead holder's room on a pass of its own (a call or a lease renewal).
        fresh = iter(enumerate(_words(200)))
        deadline = time.monotonic() + LEASE_S + 10
        while True:
            after = asyncio.run(fire(fleet, [body("gpt-4o-mini", f"after the kill {w}", f"after{i}")
                                             for i, w in (next(fresh) for _ in range(4))], [0, 1]))
            assert all(getattr(a, "status_code", None) == 200 for _, a in after), after
            holds = store.run(lambda c: c.execute(text(
                "SELECT holder, held_nanos FROM cost_budget_holds")).all())
            dead = [h for h, n in holds if f":{victim}:" in h and n]
            if not dead or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not dead, holds
        reserved, held = store.run(lambda c: c.execute(text(
            "SELECT (SELECT coalesce(sum(reserved_nanos), 0) FROM cost_budget_windows),"
            " (SELECT coalesce(sum(held_nanos), 0) FROM cost_budget_holds)")).one())
        assert reserved == held
    finally:
        store.close()


def _words(n: int) -> list[str]:
    """``n`` distinct everyday phrases without digits (digits split the semantic cache)."""
    a = ["apple", "river", "cloud", "stone", "tiger", "maple", "ocean", "piano", "lemon", "comet",
         "garden", "window", "forest", "candle", "bridge", "mirror", "pocket", "rocket", "violin", "desert"]
    b = ["red", "quiet", "tall", "warm", "old", "bright", "soft", "wild", "calm", "small", "brave", "lazy",
         "happy", "silver", "golden"]
    return [f"{b[i // len(a) % len(b)]} {a[i % len(a)]} {b[(i // 7) % len(b)]}" for i in range(n)]
