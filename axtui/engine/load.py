"""Driving a workload through the engine or a gateway URL, at a steady rate.

Open loop: call ``i`` is sent at ``start + i / rps`` whatever happened to
the calls before it, so a slow gateway shows up as latency rather than as
a politely lower rate. Used by ``ax sim load`` and the dashboard's demo.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from axtui.engine.gateway import CallOptions, Gateway
from axtui.errors import AxError
from axtui.money import nanos_to_usd, usd_text, usd_to_nanos
from axtui.providers.sim.workload import WorkItem, Workload
from axtui.types import Caller

__all__ = ["LoadSummary", "run_load"]


@dataclass(slots=True)
class LoadSummary:
    """What a load run did, as ``ax sim load --json`` prints it."""

    calls: int = 0
    ok: int = 0
    errors: int = 0
    rate_limited: int = 0
    budget_refused: int = 0
    cache_hits: int = 0
    semantic_hits: int = 0
    upstream_calls: int = 0
    cost_nanos: int = 0
    unknown_cost_calls: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    by_provider: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    #: Seconds spent sending (the rest of ``elapsed_s`` went on waiting for answers).
    sending_s: float = 0.0
    #: Calls still unanswered when the wait after sending ran out (counted as errors).
    unanswered: int = 0
    #: Why calls failed or were refused, and how often (what a user needs when nothing works).
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, status: str, cache: str, attempts: int, cost_nanos: int | None, latency_ms: float,
            provider: str | None, reason: str | None = None) -> None:
        """Count one finished call (``reason``: why it failed or was refused)."""
        self.calls += 1
        # Bounded: the same few reasons repeat; a flood of distinct texts is cut.
        if status != "ok" and reason and (reason in self.reasons or len(self.reasons) < 20):
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if status == "ok":
            self.ok += 1
            self.latencies_ms.append(latency_ms)
        elif status == "rate_limited":
            self.rate_limited += 1
        elif status == "budget_refused":
            self.budget_refused += 1
        else:
            self.errors += 1
        if cache in ("exact", "semantic"):
            self.cache_hits += 1
            self.semantic_hits += cache == "semantic"
        self.upstream_calls += attempts
        if cost_nanos is None:
            self.unknown_cost_calls += status == "ok" and cache == "miss"
        else:
            self.cost_nanos += cost_nanos
        if provider and status == "ok":
            self.by_provider[provider] = self.by_provider.get(provider, 0) + 1

    def quantile(self, q: float) -> float:
        """Latency quantile of served calls, in ms (0 when none)."""
        if not self.latencies_ms:
            return 0.0
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))]

    @property
    def cost_usd(self) -> Decimal:
        """Total cost of the run in dollars, exact."""
        return nanos_to_usd(self.cost_nanos)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``ax sim load --json``."""
        return {
            "calls": self.calls,
            "ok": self.ok,
            "errors": self.errors,
            "rate_limited": self.rate_limited,
            "budget_refused": self.budget_refused,
            "cache_hits": self.cache_hits,
            "semantic_hits": self.semantic_hits,
            "hit_rate": round(self.cache_hits / self.calls, 4) if self.calls else 0.0,
            "upstream_calls": self.upstream_calls,
            "p50_ms": round(self.quantile(0.50), 2),
            "p95_ms": round(self.quantile(0.95), 2),
            "p99_ms": round(self.quantile(0.99), 2),
            "cost_usd": usd_text(self.cost_nanos),
            "unknown_cost_calls": self.unknown_cost_calls,
            "by_provider": dict(sorted(self.by_provider.items())),
            "elapsed_s": round(self.elapsed_s, 2),
            "sending_s": round(self.sending_s, 2),
            "waiting_s": round(max(0.0, self.elapsed_s - self.sending_s), 2),
            "unanswered": self.unanswered,
            "reasons": dict(sorted(self.reasons.items(), key=lambda kv: -kv[1])[:5]),
        }


Progress = Callable[[LoadSummary, int], None]
#: Told, when sending ends, how many answers are still awaited and how long sending took.
Waiting = Callable[[int, float], None]

#: The standard workload's mix, over the demo fleet's aliases.
STANDARD_MIX = {"fast": 0.45, "smart": 0.25, "cheap": 0.3}


def workload_models(served: Iterable[str] | None) -> dict[str, float] | None:
    """The models a workload should ask for, given the names a gateway serves.

    The standard mix over whichever of ``fast``, ``smart`` and ``cheap`` are
    served; when none is (a config with its own names), every served chat
    model alike. None (the standard mix) when what is served is not known.
    """
    if served is None:
        return None
    names = sorted(set(served))
    mix = {m: w for m, w in STANDARD_MIX.items() if m in names}
    if mix:
        return mix
    return {name: 1.0 for name in names} or None


async def run_load(
    workload: Workload,
    *,
    rps: float,
    duration: float | None,
    gateway: Gateway | None = None,
    target: str | None = None,
    strategy: str | None = None,
    progress: Progress | None = None,
    max_in_flight: int = 2_000,
    wait_s: float | None = None,
    waiting: Waiting | None = None,
) -> LoadSummary:
    """Send ``rps * duration`` calls over ``duration`` seconds (forever when it is None), then wait for answers.

    Exactly one of ``gateway`` (in-process) and ``target`` (a gateway URL)
    is given. ``progress(summary, sent)`` is called after every call;
    ``waiting(in_flight, sending_s)`` once sending is over and answers are awaited.
    Calls still unanswered ``wait_s`` seconds later (None: wait for all)
    are cancelled and counted as errors.
    """
    if (gateway is None) == (target is None):
        raise ValueError("give exactly one of gateway and target")
    summary = LoadSummary()
    total = None if duration is None else max(1, round(rps * duration))
    limit = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    client = _HttpTarget(target) if target else None
    start = time.monotonic()
    sent = 0

    async def one(item: WorkItem) -> None:
        try:
            if client is not None:
                await client.send(item, summary, strategy)
            else:
                assert gateway is not None
                await _through_engine(gateway, item, summary, strategy)
        finally:
            limit.release()
            if progress is not None:
                progress(summary, sent)

    try:
        for item in workload:
            if total is not None and sent >= total:
                break
            due = start + sent / rps
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await limit.acquire()
            sent += 1
            task = asyncio.create_task(one(item))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        summary.sending_s = time.monotonic() - start
        if tasks:
            if waiting is not None:
                waiting(len(tasks), summary.sending_s)
            done, pending = await asyncio.wait(set(tasks), timeout=wait_s)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]  # as gather would
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
                summary.unanswered = len(pending)
                for _ in pending:
                    summary.add("error", "miss", 0, None, 0.0, None,
                                f"no answer within the {wait_s:g} s waited after sending stopped")
    finally:
        for task in tasks:
            task.cancel()
        if client is not None:
            await client.aclose()
        summary.elapsed_s = time.monotonic() - start
    return summary


async def _through_engine(gateway: Gateway, item: WorkItem, summary: LoadSummary, strategy: str | None) -> None:
    options = CallOptions(strategy=strategy)
    caller = Caller(user=item.user)
    if item.stream:
        stream = gateway.stream(item.request, caller, options)
        try:
            async for _ in stream:
                pass
        except AxError:
            pass
        rec = stream.record
    else:
        try:
            rec = (await gateway.call(item.request, caller, options)).record
        except AxError as exc:
            rec = exc.record
            if rec is None:
                summary.add("error", "miss", 0, None, 0.0, None, exc.message)
                return
    summary.add(rec.status, rec.cache, rec.attempts, rec.cost_nanos, rec.latency_ms, rec.provider,
                rec.error_message)


class _HttpTarget:
    """Calls a running ``ax serve`` over its OpenAI-compatible API."""

    def __init__(self, url: str) -> None:
        import os

        import aiohttp

        self.url = url.rstrip("/")
        if not self.url.endswith("/v1"):
            self.url += "/v1"
        key = os.environ.get("AX_API_KEY", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=120, connect=5),
            connector=aiohttp.TCPConnector(limit=2_000),
        )

    async def send(self, item: WorkItem, summary: LoadSummary, strategy: str | None) -> None:
        import aiohttp

        body = item.request.model_dump(exclude_none=True)
        body["user"] = item.user
        headers = {"x-ax-strategy": strategy} if strategy else {}
        if item.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        start = time.monotonic()
        try:
            async with self.session.post(f"{self.url}/chat/completions", json=body, headers=headers) as resp:
                content = await resp.read()
                status_code, got = resp.status, resp.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            summary.add("error", "miss", 0, None, 0.0, None, f"cannot reach the gateway at {self.url} ({detail})")
            return
        latency = (time.monotonic() - start) * 1000
        status = {200: "ok", 429: "rate_limited", 402: "budget_refused"}.get(status_code, "error")
        cache = got.get("x-ax-cache", "miss")
        cost = got.get("x-ax-cost-usd")
        cost_nanos = None if not cost else usd_to_nanos(cost)
        attempts = 0 if cache != "miss" or status != "ok" else 1
        reason = None if status == "ok" else f"HTTP {status_code}: {_error_text(content)}"
        summary.add(status, cache, attempts, cost_nanos, latency, got.get("x-ax-provider"), reason)

    async def aclose(self) -> None:
        await self.session.close()


def _error_text(content: bytes) -> str:
    """The message of an OpenAI-shaped error answer, else the start of its body."""
    try:
        message = json.loads(content)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = None
    if isinstance(message, str) and message:
        return message
    return " ".join(content[:400].decode("utf-8", "replace").split())[:200] or "(no body)"
