"""Engine overhead and recorder throughput (the spine's benchmarks).

1. Engine overhead per call: `Gateway.call` over a zero-latency in-process
   provider, against calling that provider directly (target <= 100 µs p50),
   with the composition `build_gateway` gives (limits, budgets and cache as
   configured by default) and with every subsystem switched off.
2. Recorder: records written per second (target >= 20k/s), and the event
   loop's longest stall while 5k calls/s are recorded (target <= 5 ms).

Run: ``.venv/bin/python benchmarks/bench_engine.py``
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from axtui.config import ProviderConfig, Settings
from axtui.engine.compose import build_gateway
from axtui.ports import NullBudgets, NullCache, NullLimiter
from axtui.providers.base import Provider
from axtui.store import Store
from axtui.store.recorder import Recorder
from axtui.types import Caller, CallRecord, ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse, Usage

N = 5_000


class ZeroLatency(Provider):
    """Answers at once, without I/O."""

    kind = "zero"

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        return ChatResponse("ok", deployment.upstream_model, Usage(input_tokens=12, output_tokens=3))

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:  # type: ignore[override]
        yield Chunk(delta="ok")

    async def embed(self, inputs: list[str], model: str) -> EmbeddingResponse:
        return EmbeddingResponse([[0.0]], model, Usage())

    async def list_models(self) -> list[str]:
        return ["m"]


def _q(data: list[float], q: float) -> float:
    data = sorted(data)
    return data[min(len(data) - 1, int(q * len(data)))]


async def engine_overhead() -> None:
    settings = Settings.model_validate({"providers": [{"name": "z", "kind": "openai", "models": ["m"]}],
                                        "cache": {"enabled": False}})
    provider = ZeroLatency(ProviderConfig(name="z"))
    dep = Deployment(provider="z", model="m", upstream_model="m")
    requests = [ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": f"q {i}"}]})
                for i in range(N)]

    direct: list[float] = []
    for req in requests:
        t = time.perf_counter()
        await provider.chat(req, dep)
        direct.append((time.perf_counter() - t) * 1e6)

    async def measure(label: str, strip: bool) -> None:
        gw = await build_gateway(settings, providers={"z": provider})
        if strip:
            gw.limiter, gw.budgets, gw.cache = NullLimiter(), NullBudgets(), NullCache()
        caller = Caller(user="bench")
        for req in requests[:500]:
            await gw.call(req, caller)
        took: list[float] = []
        for req in requests:
            t = time.perf_counter()
            await gw.call(req, caller)
            took.append((time.perf_counter() - t) * 1e6)
        await gw.aclose()
        p50 = _q(took, 0.5) - _q(direct, 0.5)
        print(f"  {label:<34} p50 {_q(took, 0.5):7.1f} µs  p99 {_q(took, 0.99):7.1f} µs  "
              f"overhead p50 {p50:6.1f} µs  (target <= 100 µs)")

    print(f"engine overhead per call ({N} calls; zero-latency provider)")
    print(f"  {'direct provider call (baseline)':<34} p50 {_q(direct, 0.5):7.1f} µs  p99 {_q(direct, 0.99):7.1f} µs")
    await measure("gateway, pipeline only", strip=True)
    await measure("gateway, default composition", strip=False)


def recorder_throughput() -> None:
    store = Store.open()
    rec = Recorder(store, flush_interval_ms=250, batch_size=5_000)
    records = [CallRecord(ts=time.time(), user=f"u{i % 50}", requested_model="m", provider="p", model="m",
                          cost_nanos=1234, input_tokens=100, output_tokens=20, tags=("t",)) for i in range(100_000)]
    t = time.perf_counter()
    for r in records:
        rec.record(r)
    rec.flush(timeout=120)
    took = time.perf_counter() - t
    rec.close()
    # Baseline: the same rows through the bare sqlite3 module, one executemany.
    import sqlite3

    from axtui.store.recorder import record_to_row

    rows = [record_to_row(r) for r in records]
    cols = list(rows[0])
    path = store.path
    store.close()
    assert path is not None
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM calls")
        sql = f"INSERT INTO calls ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        t = time.perf_counter()
        conn.executemany(sql, [tuple(r[c] for c in cols) for r in rows])
        conn.commit()
        raw = time.perf_counter() - t
    print(f"recorder: {len(records) / took:,.0f} records/s written (target >= 20,000/s); "
          f"bare sqlite3 executemany of the same rows: {len(records) / raw:,.0f} rows/s")


async def loop_stall() -> None:
    store = Store.open()
    rec = Recorder(store, flush_interval_ms=250)
    stalls: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            stalls.append((time.perf_counter() - t) * 1000 - 1.0)

    async def producer() -> None:
        rate, seconds = 5_000, 4
        start = time.perf_counter()
        for i in range(rate * seconds):
            due = start + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            rec.record(CallRecord(ts=time.time(), user="u", requested_model="m", cost_nanos=1))
        stop.set()

    await asyncio.gather(ticker(), producer())
    await asyncio.to_thread(rec.close)
    store.close()
    print(f"event loop while recording 5k calls/s: longest stall {max(stalls):.2f} ms, "
          f"mean {statistics.mean(stalls):.3f} ms over {len(stalls)} ticks (target <= 5 ms)")


def main() -> None:
    from axtui.server.run import tune_process

    tune_process()  # as `ax serve` does: the recorder's thread hands the GIL back within 1 ms
    with tempfile.TemporaryDirectory() as home:
        os.environ["AX_HOME"] = home
        asyncio.run(engine_overhead())
        recorder_throughput()
        asyncio.run(loop_stall())


if __name__ == "__main__":
    main()
