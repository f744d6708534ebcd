"""Dashboard benchmark: launch to first paint, key press to redraw, and CPU, with 1,000 calls/s flowing.

Headless (Textual's test driver at 120x40), but every frame is still
encoded as the terminal would receive it, so the figures include the cost
of drawing. Calls are fed into the live windows by a thread at a steady
rate, as the engine's bus would; that thread's own CPU (counting the
calls) is measured apart and not charged to the dashboard.

Figures (targets from DESIGN.md):
- key press to redraw, p50 / p95 / max (target ≤ 100 ms), baseline: the same press with nothing flowing;
- the dashboard's CPU at a 2 Hz refresh, % of one core (target ≤ 30 %), baseline: paused under the same flow;
- launch to first full paint: local store, and the demo engine.

Run: ``.venv/bin/python benchmarks/bench_tui.py`` (about 40 s).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

RATE = 1000  # calls per second fed
SECONDS = 8.0  # of each CPU measurement
PRESSES = 25


def _records(n: int) -> list[Any]:
    """A cycle of realistic call records over the demo fleet."""
    from axtui.config import Settings
    from axtui.engine.compose import build_catalog, effective_providers
    from axtui.types import CallRecord

    rng = random.Random(5)
    catalog = build_catalog(effective_providers(Settings()))
    deps = [d for d in catalog.deployments if "embed" not in d.upstream_model]
    out = []
    for i in range(n):
        d = rng.choice(deps)
        status = "error" if rng.random() < 0.03 else "ok"
        cache = "exact" if rng.random() < 0.25 else "miss"
        out.append(CallRecord(ts=0.0, user=f"user-{rng.randrange(40)}", requested_model=d.model,
                              status=status, provider=d.provider, model=d.model,  # type: ignore[arg-type]
                              deployment=d.id, latency_ms=rng.uniform(150, 3000), ttft_ms=rng.uniform(80, 900),
                              input_tokens=rng.randrange(20, 900), output_tokens=rng.randrange(10, 400),
                              cost_nanos=rng.randrange(1_000, 2_000_000), cache=cache,  # type: ignore[arg-type]
                              request_id=f"r{i}"))
    return out


class Feeder:
    """Feeds ``rate`` calls a second into live windows from its own thread, measuring its own CPU."""

    def __init__(self, metrics: Any, rate: int) -> None:
        self.metrics = metrics
        self.rate = rate
        self.cpu = 0.0
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="feeder")
        self._pool = _records(5000)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start_cpu = time.thread_time()
        start = time.monotonic()
        pool, n = self._pool, len(self._pool)
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * self.rate)
            while self.sent < due:
                rec = replace(pool[self.sent % n], ts=time.time(), request_id=f"c{self.sent}")
                self.metrics.observe(rec)
                self.sent += 1
            self.cpu = time.thread_time() - start_cpu
            time.sleep(0.005)
        self.cpu = time.thread_time() - start_cpu


def _frames(app: Any) -> list[float]:
    """Record when each frame is drawn, and encode it as a terminal would receive it."""
    from textual._compositor import CompositorUpdate

    stamps: list[float] = []
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        if renderable is not None and isinstance(renderable, CompositorUpdate) and not app._batch_count:
            renderable.render_segments(app.console)
            stamps.append(time.perf_counter())
        original(screen, renderable)

    app._display = display
    return stamps


def _local_backend(home: Path, metrics: Any) -> Any:
    """The local backend as ``ax monitor realtime`` builds it: it opens the store when it starts."""
    from axtui.config import Settings
    from axtui.tui.data_local import StoreBackend

    return StoreBackend(Settings(), metrics=metrics, database_url=f"sqlite:///{home / 'bench.db'}")


async def _settle(pilot: Any, app: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.started and getattr(app.screen, "fetches", 0) >= 1:
            return
        await pilot.pause(0.01)
    raise RuntimeError("the dashboard did not paint")


async def _press_latency(pilot: Any, app: Any, stamps: list[float]) -> list[float]:
    """Milliseconds from each key press to the next frame on screen (the sort order changes each press)."""
    out = []
    rng = random.Random(1)
    for _ in range(3):  # warm up: the first sorts build caches
        await pilot.press("s")
        await pilot.pause(0.05)
    for _ in range(PRESSES):
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        seen = len(stamps)
        t0 = time.perf_counter()
        await pilot.press("s")
        while len(stamps) == seen or stamps[-1] < t0:
            await asyncio.sleep(0.001)
        out.append((stamps[seen] - t0) * 1000)
    return out


async def _cpu(pilot: Any, feeder: Feeder | None, seconds: float) -> float:
    """The dashboard's CPU over ``seconds``, % of one core (the feeder's own CPU taken out)."""
    fed0 = feeder.cpu if feeder else 0.0
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    fed = (feeder.cpu if feeder else 0.0) - fed0
    return 100 * (time.process_time() - cpu0 - fed) / (time.monotonic() - wall0)


async def _flowing(home: Path) -> dict[str, Any]:
    from axtui.config import MetricsConfig
    from axtui.metrics.live import LiveMetrics
    from axtui.tui.app import AxApp

    out: dict[str, Any] = {}
    metrics = LiveMetrics(MetricsConfig())
    app = AxApp(_local_backend(home, metrics), refresh_hz=2.0, blink=False)
    stamps = _frames(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot, app)
        out["idle_press"] = await _press_latency(pilot, app, stamps)
        out["idle_cpu"] = await _cpu(pilot, None, SECONDS / 2)
        feeder = Feeder(metrics, RATE)
        fed_from = time.monotonic()
        feeder.start()
        await asyncio.sleep(2.0)  # windows fill, the log reaches its length
        out["cpu"] = await _cpu(pilot, feeder, SECONDS)
        out["press"] = await _press_latency(pilot, app, stamps)
        await pilot.press("p")
        await asyncio.sleep(0.5)
        out["paused_cpu"] = await _cpu(pilot, feeder, SECONDS / 2)
        await pilot.press("p")
        feeder.stop()
        out["fed_rate"] = feeder.sent / (time.monotonic() - fed_from)
    return out


async def _first_paint(backend: Any) -> tuple[float, float]:
    """Seconds from creating the app to its first frame, and to the first frame with data."""
    from axtui.tui.app import AxApp

    t0 = time.perf_counter()
    app = AxApp(backend, blink=False)
    stamps = _frames(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot, app)
        await pilot.pause()
        return stamps[0] - t0, stamps[-1] - t0


async def _first_paint_local(home: Path) -> tuple[float, float]:
    from axtui.config import MetricsConfig
    from axtui.metrics.live import LiveMetrics

    return await _first_paint(_local_backend(home, LiveMetrics(MetricsConfig())))


async def _first_paint_demo() -> tuple[float, float]:
    from axtui.config import Settings
    from axtui.tui.data_demo import DemoBackend

    return await _first_paint(DemoBackend(Settings(), traffic=False))


def _import_time() -> float:
    import subprocess

    code = "import time; t=time.perf_counter(); import axtui.tui.app; print(time.perf_counter()-t)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return f"p50 {statistics.median(values):6.1f} ms  p95 {p95:6.1f} ms  max {values[-1]:6.1f} ms"


def main() -> None:
    """Run every figure and print it beside its baseline and target."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["AX_HOME"] = str(home)
        imported = _import_time()
        local = asyncio.run(_first_paint_local(home))
        demo = asyncio.run(_first_paint_demo())
        flow = asyncio.run(_flowing(home))
    press, idle = flow["press"], flow["idle_press"]
    p95 = sorted(press)[min(len(press) - 1, int(0.95 * len(press)))]
    print(f"dashboard, headless 120x40, {RATE:,} calls/s fed (measured {flow['fed_rate']:,.0f}/s), 2 Hz refresh")
    print(f"  key press to redraw     {_ms(press)}   baseline (nothing flowing) {_ms(idle)}   "
          f"target p95 ≤ 100 ms: {'met' if p95 <= 100 else 'MISSED'}")
    print(f"  CPU of the dashboard    {flow['cpu']:5.1f} % of a core   baseline paused {flow['paused_cpu']:5.1f} %, "
          f"idle {flow['idle_cpu']:5.1f} %   target ≤ 30 %: {'met' if flow['cpu'] <= 30 else 'MISSED'}")
    print(f"  launch to first paint   local store: frame {local[0] * 1000:5.0f} ms, full {local[1] * 1000:5.0f} ms   "
          f"demo engine: frame {demo[0] * 1000:5.0f} ms, full {demo[1] * 1000:5.0f} ms   "
          f"(+ importing the dashboard: {imported * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
