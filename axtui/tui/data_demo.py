"""The demo: the engine in this process, on the simulated fleet, under load.

`DemoEngine` runs a gateway and the standard workload on an event loop of
its own, in a background thread, so a burst of traffic never delays a key
press. Traffic swells and ebbs between a few calls a second and about
fifty; the fleet's ``azure`` provider has a bad spell two minutes in every
ten, so routing moves traffic away and back and alerts fire and resolve.

The demo keeps its own database (``demo.db``) and config (``demo.toml``)
in the data dir, so demo spend never mixes with real spend and routing
edits made in the demo never touch the real config. Both start with a few
budgets, limits, alert rules, a routing rule and an A/B test, so every
screen has something to show on the first run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from axtui import locations
from axtui.bus import AlertChanged, BudgetCrossed, Event, SettingsChanged
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import ABTestConfig, ABVariant, RoutingRule, Settings, load_settings, save_settings
from axtui.routing.health import HealthSnapshot
from axtui.tui.data import DeploymentState, LiveView
from axtui.tui.data_local import StoreBackend

__all__ = ["DemoBackend", "DemoEngine", "demo_config_path", "demo_database_url", "demo_settings"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The steady floor of demo traffic, calls per second.
BASE_RPS = 4.0
#: The highest the demo's traffic swells to, calls per second.
PEAK_RPS = 50.0
#: Seconds of one swell-and-ebb cycle of demo traffic.
WAVE_PERIOD_S = 90.0


def demo_database_url() -> str:
    """The demo's own SQLite database in the data dir."""
    return f"sqlite:///{locations.data_dir() / 'demo.db'}"


def demo_config_path() -> Path:
    """The demo's own config file (routing edits made in the demo are saved here)."""
    return locations.data_dir() / "demo.toml"


def demo_settings(base: Settings | None = None) -> Settings:
    """The demo's settings: the demo fleet, with a routing rule and an A/B test.

    Read from `demo_config_path` when it exists (so routing edits made in
    an earlier demo persist), else built and saved there. The dashboard
    section of ``base`` (the user's config) is kept.
    """
    path = demo_config_path()
    if path.exists():
        settings = load_settings(path)
    else:
        settings = Settings(
            # Answers cached for five minutes: the demo's popular questions keep a realistic hit
            # rate instead of being served from a cache filled by every earlier demo run.
            cache={"ttl_s": 300},  # type: ignore[arg-type]
            routing={  # type: ignore[arg-type]
                "strategy": "latency",
                "rules": [
                    RoutingRule(name="long-prompts-go-cheap", min_prompt_tokens=2000, strategy="cost"),
                    RoutingRule(name="user-1-stays-in-us", user="user-1", model="smart", strategy="latency",
                                region="us-east"),
                ],
                "ab_tests": [
                    ABTestConfig(name="smart-4o-vs-sonnet", model="smart", variants=[
                        ABVariant(name="gpt-4o", model="gpt-4o", percent=50),
                        ABVariant(name="sonnet", model="claude-sonnet-4-5", percent=50),
                    ]),
                ],
            },
        )
        save_settings(settings, path)
    if base is not None:
        settings = settings.model_copy(update={"ui": base.ui})
    return settings


def wave_rps(t: float) -> float:
    """Extra calls per second on top of the floor at ``t`` seconds into the demo (0 .. PEAK - BASE)."""
    phase = (t % WAVE_PERIOD_S) / WAVE_PERIOD_S
    # A raised cosine with a flat trough: quiet a third of the time, then a swell.
    swell = max(0.0, math.sin(phase * 2 * math.pi - math.pi / 3))
    return (PEAK_RPS - BASE_RPS) * swell**2


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a swell of demo traffic failed", exc_info=task.exception())


class DemoEngine:
    """A gateway on the simulated fleet with the standard workload, in a thread.

    Args:
        settings: the demo's settings (`demo_settings`).
        database_url: where the demo records (`demo_database_url`).
        seed: seeds the workload and the simulated providers (None: a new one each run, so a
            demo does not replay the questions an earlier one asked).
        traffic: drive the workload (False leaves the engine idle: tests call it themselves).
    """

    def __init__(self, settings: Settings, database_url: str, *, seed: int | None = None,
                 traffic: bool = True) -> None:
        self.settings = settings
        self.database_url = database_url
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 30)
        self.traffic = traffic
        self.gateway: Any = None
        self.monitoring: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start the engine thread and wait until the gateway serves.

        Raises:
            BaseException: whatever building the gateway raised.
        """
        self._thread = threading.Thread(target=self._main, name="ax-demo-engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the demo engine did not start within a minute")
        if self.error is not None:
            raise self.error

    def _main(self) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to `start`, or logged once running
            if not self._ready.is_set():
                self.error = exc
            else:
                log.exception("the demo engine stopped")
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        from axtui.engine.compose import build_gateway
        from axtui.metrics.monitoring import attach_monitoring

        self._stop = asyncio.Event()
        self.gateway = await build_gateway(self.settings, database_url=self.database_url, sim_seed=self.seed)
        try:
            # Deployment weights saved from the routing screen in an earlier demo apply from the start.
            from axtui.routing.build import apply_settings

            apply_settings(self.gateway.router, self.settings)
            self.monitoring = attach_monitoring(self.gateway, source="local", prometheus=False)
            self._ready.set()
            tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self._stop.wait())]
            if self.traffic:
                tasks.append(asyncio.create_task(self._drive()))
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        finally:
            await self.gateway.aclose()

    async def _drive(self) -> None:
        """The steady floor forever, plus swells of a few seconds each."""
        from axtui.engine.load import run_load
        from axtui.providers.sim.workload import Workload

        floor = asyncio.create_task(self._keep_going(
            lambda n: run_load(Workload(seed=self.seed + 1000 * n, users=8), rps=BASE_RPS, duration=None,
                               gateway=self.gateway)
        ))
        loop = asyncio.get_running_loop()
        start = loop.time()
        swell_seed = self.seed + 1
        swells: set[asyncio.Task[Any]] = set()
        try:
            while True:
                extra = wave_rps(loop.time() - start)
                if extra >= 1:
                    swell_seed += 1
                    task = asyncio.create_task(run_load(
                        Workload(seed=swell_seed, users=8), rps=extra, duration=5.0, gateway=self.gateway,
                    ))
                    swells.add(task)
                    task.add_done_callback(swells.discard)
                    task.add_done_callback(_log_failure)
                await asyncio.sleep(5.0)
        finally:
            floor.cancel()
            for task in list(swells):
                task.cancel()

    async def _keep_going(self, start: Callable[[int], Coroutine[Any, Any, Any]]) -> None:
        """Run the steady floor of traffic, starting it again if something in it fails."""
        n = 0
        while True:
            try:
                await start(n)
            except asyncio.CancelledError:
                raise
            except Exception:  # the demo must keep moving; the failure goes to the log
                log.exception("demo traffic stopped; starting it again")
                await asyncio.sleep(1.0)
            n += 1

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the engine's loop (where the gateway's state lives) and return its result."""
        if self.loop is None or self.loop.is_closed():
            raise RuntimeError("the demo engine is not running")

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the engine's loop and wait for it."""
        if self.loop is None or self.loop.is_closed():
            raise RuntimeError("the demo engine is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the traffic, close the gateway (every record written) and end the thread."""
        loop, stop = self.loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)


class DemoBackend(StoreBackend):
    """The local backend over an in-process demo engine.

    Args:
        settings: the user's settings (only the ``[ui]`` section is used).
        clock: the time source.
        database_url: the demo database (default `demo_database_url`).
        traffic: drive the standard workload (tests pass False and call the engine themselves).
        seed: seeds the workload and the fleet (None: a new seed each run).
    """

    mode = "demo"

    def __init__(
        self,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        *,
        database_url: str | None = None,
        traffic: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(settings, clock, database_url=database_url)
        self.traffic = traffic
        self.seed = seed
        self.engine: DemoEngine | None = None
        self.config_path: Path | None = demo_config_path()

    @property
    def label(self) -> str:
        return "DEMO"

    @property
    def applies_routing_now(self) -> bool:
        """The demo's engine takes saved routing at once."""
        return True

    def start(self) -> None:
        try:
            from axtui.engine.compose import build_catalog, effective_providers

            self.database_url = self.database_url or demo_database_url()
            locations.private_dir(locations.data_dir())
            demo = demo_settings(self.settings)
            engine = DemoEngine(demo, self.database_url, seed=self.seed, traffic=self.traffic)
            engine.start()
            self.engine = engine
            self.settings = effective_providers(demo)
            self.catalog = build_catalog(self.settings)
            self._store = engine.gateway.store
            self._owns_store = False
            self.metrics = engine.monitoring.live
            engine.gateway.bus.subscribe(self._on_bus)
            from axtui.tui.demo_seed import seed_demo

            seed_demo(self.store, self.settings, self.clock.now())
        except Exception as exc:
            self.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.ready.set()

    def close(self) -> None:
        if self.engine is not None:
            self.engine.stop()

    def _on_bus(self, event: Event) -> None:
        """The one place the dashboard reads the engine's bus: alert transitions and budget thresholds."""
        if isinstance(event, AlertChanged):
            self._emit_alert(event.event)
        elif isinstance(event, BudgetCrossed):
            self._emit_alert(event.alert)

    def live(self, series_s: int) -> LiveView:
        self.wait_ready(60)
        assert self.engine is not None
        snap = self.engine.monitoring.snapshot(series_s=series_s, recent=self.settings.metrics.recent_calls)
        return LiveView(snapshot=snap, health=self.deployment_health(), alerts=list(snap.alerts))

    def deployment_health(self) -> dict[str, DeploymentState]:
        """The running router's view of each deployment."""
        from axtui.tui.data_local import _state

        return {s.deployment: _state(s) for s in self.deployment_health_list()}

    def deployment_health_list(self) -> list[HealthSnapshot]:
        """The running router's health snapshots (taken on the engine's loop, where they change)."""
        assert self.engine is not None
        return self.engine.call(self.engine.gateway.router.health_snapshot)

    def with_limiter(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(limiter)`` with the engine's own limiter, on the engine's loop."""
        assert self.engine is not None
        return self.engine.run(fn(self.engine.gateway.limiter))

    def with_router(self, fn: Callable[[Any], T]) -> T:
        """Call ``fn(router)`` with the engine's router, on the engine's loop."""
        assert self.engine is not None
        router = self.engine.gateway.router
        return self.engine.call(lambda: fn(router))

    def after_budget_change(self) -> None:
        """Make a budget edit hold from the engine's next call, not its next refresh."""
        if self.engine is not None:
            budgets = self.engine.gateway.budgets
            self.engine.call(budgets.refresh)

    def after_settings_saved(self, settings: Settings) -> None:
        """Hand saved routing settings to the running engine (its router listens on the bus)."""
        if self.engine is not None:
            bus = self.engine.gateway.bus
            self.engine.call(lambda: bus.publish(SettingsChanged(settings)))
