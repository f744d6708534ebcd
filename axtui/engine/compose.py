"""Building a gateway from settings: one function per subsystem.

This is the one place that knows every subsystem; each ``_build_*``
function returns the subsystem's implementation of its port.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
from pydantic import ValidationError

from axtui import locations
from axtui.bus import EventBus
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import Settings, load_settings
from axtui.engine.gateway import CacheEmbed, Gateway
from axtui.errors import ConfigError
from axtui.ports import Budgets, Limiter, PriceBook, ResponseCache, Router
from axtui.providers import Provider, create_provider
from axtui.redaction import is_secret_header, remember
from axtui.routing.catalog import Catalog
from axtui.store import Store
from axtui.store.recorder import Recorder
from axtui.telemetry import build_telemetry
from axtui.types import Deployment

__all__ = ["build_catalog", "build_gateway", "effective_providers"]

log = logging.getLogger(__name__)


def effective_providers(settings: Settings, *, announce: bool = False) -> Settings:
    """The settings with the demo fleet filled in when no provider is configured."""
    if not settings.uses_demo_fleet:
        return settings
    from axtui.providers.sim import fleet

    if announce:
        print("ax: no providers configured; using the built-in demo fleet (run `ax config init` to add real ones)",
              file=sys.stderr)
    data = settings.model_dump()
    data["providers"] = [p.model_dump() for p in fleet.demo_providers()]
    aliases = dict(fleet.demo_aliases())
    aliases.update(settings.routing.aliases)
    data["routing"]["aliases"] = aliases
    prices = {k: v.model_dump() for k, v in fleet.demo_price_overrides().items()}
    prices.update(data.get("prices", {}))
    data["prices"] = prices
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        # The file is valid alone but names something the demo fleet lacks.
        from axtui.validation import field_problems, problems_text

        problems = problems_text(field_problems(exc), most=None)
        raise ConfigError(
            f"{locations.config_path()}: no [[providers]] are configured, so the built-in demo fleet serves, "
            f"and the settings do not fit it: {problems}. Configure the providers they name "
            "(`ax config init` writes an example) or remove those settings."
        ) from None


def build_catalog(settings: Settings) -> Catalog:
    """Deployments from each provider's ``models`` and the ``[[deployments]]`` list.

    Simulated providers describe their own models' capabilities; others get
    theirs from ``[[deployments]]`` entries (and the price sheet's data).
    """
    deployments: list[Deployment] = []
    embedding: list[Deployment] = []
    by_name = {p.name: p for p in settings.providers if p.enabled}
    sim_caps: dict[str, Deployment] = {}
    for p in by_name.values():
        if p.kind == "sim":
            from axtui.providers.sim.profiles import deployments_for

            sim = deployments_for(p)
            sim_caps.update({d.id: d for d in sim})
            deployments.extend(sim)
            embedding.extend(deployments_for(p, embedding=True))
        else:
            deployments.extend(
                Deployment(provider=p.name, model=m, upstream_model=m, region=p.region) for m in p.models
            )
    for d in settings.deployments:
        owner = by_name.get(d.provider)
        if owner is None:
            continue
        upstream = d.upstream_model or d.model
        base = sim_caps.get(f"{owner.name}/{upstream}")
        dep = replace(base, model=d.model) if base else Deployment(provider=owner.name, model=d.model, upstream_model=upstream)
        dep.region = d.region or owner.region
        dep.weight = d.weight
        if d.base_model:
            dep.base_model = d.base_model
        if d.context_window:
            dep.context_window = d.context_window
        if d.max_output:
            dep.max_output = d.max_output
        if d.tools is not None:
            dep.supports_tools = d.tools
        if d.vision is not None:
            dep.supports_vision = d.vision
        if d.json_mode is not None:
            dep.supports_json = d.json_mode
        # An entry for a deployment a provider's `models` already lists refines it
        # (weight, region, capabilities) rather than being ignored as a duplicate.
        same = next((i for i, x in enumerate(deployments) if x.id == dep.id and x.model == dep.model), None)
        if same is None:
            deployments.append(dep)
        else:
            deployments[same] = dep
    return Catalog(deployments, settings.routing.aliases, embedding)


async def build_gateway(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    database_url: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    bus: EventBus | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    providers: dict[str, Provider] | None = None,
    record: bool = True,
    announce_demo: bool = False,
    sim_seed: int = 0,
) -> Gateway:
    """A gateway with every subsystem the settings switch on.

    Args:
        settings: the settings; read from the config file when None.
        store: an open store; opened from ``database_url`` (or the default) when None.
        database_url: where to open the store when ``store`` is None.
        clock: the clock every time-dependent part uses.
        bus: the event bus; a new one when None.
        transport: an httpx transport for every HTTP provider (tests pass a mock).
        providers: ready provider instances by name, replacing configured ones.
        record: whether to record calls in the store (then a store that takes no writes is refused).
        announce_demo: print one line on stderr when the demo fleet is used.
        sim_seed: the seed of in-process simulated providers.

    Raises:
        StoreError: the store cannot be opened, or (with ``record``) takes no writes.
    """
    settings = effective_providers(settings or load_settings(), announce=announce_demo)
    owns_store = store is None
    if store is None:
        store = Store.open(database_url)
    if record:
        # Every call served is recorded: a gateway that could not write one must not start serving.
        try:
            store.check_writable()
        except Exception:
            if owns_store:
                store.close()
            raise
    bus = bus or EventBus()
    catalog = build_catalog(settings)
    made: dict[str, Provider] = dict(providers or {})
    for p in settings.providers:
        if p.enabled and p.name not in made:
            kwargs: dict[str, Any] = {}
            if p.kind == "sim":
                kwargs = {"clock": clock, "seed": sim_seed}
            elif transport is not None:
                kwargs = {"transport": transport}
            made[p.name] = create_provider(p, **kwargs)
    for provider in made.values():
        # Every key this gateway may send is scrubbed from whatever it
        # writes, should an upstream echo it back.
        if isinstance(provider, Provider):
            remember(provider.api_key(required=False))
            for name, value in provider.config.headers.items():
                if is_secret_header(name):
                    remember(value)
    recorder = (
        Recorder(store, flush_interval_ms=settings.recorder.flush_interval_ms, batch_size=settings.recorder.batch_size,
                 max_pending=settings.recorder.max_pending, full_wait_s=settings.recorder.full_wait_s)
        if record
        else None
    )
    ctx = _Context(settings, store, bus, clock, catalog, recorder)
    ctx.providers = made
    prices = _build_prices(ctx)
    telemetry = build_telemetry(settings)
    if telemetry.enabled:
        ctx.closers.append(lambda: asyncio.to_thread(telemetry.shutdown))
    gateway = Gateway(
        settings=settings,
        catalog=catalog,
        providers=made,
        router=_build_router(ctx, prices),
        limiter=_build_limiter(ctx),
        budgets=_build_budgets(ctx, prices),
        cache=_build_cache(ctx, prices),
        prices=prices,
        recorder=recorder,
        store=store,
        bus=bus,
        clock=clock,
        owns_store=owns_store,
        extras={"closers": ctx.closers},
        telemetry=telemetry,
    )
    return gateway


class _Context:
    """What every subsystem builder may use."""

    def __init__(
        self, settings: Settings, store: Store, bus: EventBus, clock: Clock, catalog: Catalog, recorder: Recorder | None
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.clock = clock
        self.catalog = catalog
        self.recorder = recorder
        #: Called (and awaited if async) when the gateway closes, before the recorder flushes.
        self.closers: list[Any] = []
        #: The provider instances by name (the limiter reads their upstream limits).
        self.providers: dict[str, Provider] = {}


def _build_prices(ctx: _Context) -> PriceBook:
    from axtui.cost.rollups import RollupHook
    from axtui.cost.sheet import PriceSheet

    sheet = PriceSheet.load(ctx.settings.prices)
    if ctx.recorder is not None:
        # Spend rollups are written in each recorder batch's transaction, with the calls.
        metrics = ctx.settings.metrics
        ctx.recorder.add_hook(
            RollupHook(
                minute_retention_s=metrics.minute_retention_days * 86400,
                hour_retention_s=metrics.hour_retention_days * 86400,
                clock=ctx.clock,
            )
        )
    return sheet


def _build_router(ctx: _Context, prices: PriceBook) -> Router:
    from axtui.routing.build import build_router

    return build_router(ctx.catalog, ctx.settings, clock=ctx.clock, prices=prices, store=ctx.store,
                        recorder=ctx.recorder, bus=ctx.bus, closers=ctx.closers)


def _build_limiter(ctx: _Context) -> Limiter:
    from axtui.ratelimit.factory import build_limiter

    limiter = build_limiter(ctx.settings, store=ctx.store, clock=ctx.clock, providers=ctx.providers, bus=ctx.bus)
    ctx.closers.append(limiter.aclose)
    return limiter


def _build_budgets(ctx: _Context, prices: PriceBook) -> Budgets:
    from axtui.cost.alerts import AlertNotifier
    from axtui.cost.enforcement import BudgetBook
    from axtui.webhooks import webhook_policy

    budgets = ctx.settings.budgets
    notifier = AlertNotifier(ctx.store, bus=ctx.bus, clock=ctx.clock, attempts=budgets.webhook_attempts,
                             policy=webhook_policy(ctx.settings.webhooks))  # fmt: skip
    book = BudgetBook(ctx.store, budgets, clock=ctx.clock, bus=ctx.bus, notifier=notifier)
    ctx.closers.append(book.aclose)
    if ctx.recorder is not None:
        # A call's cost reaches its budget counters before its record reaches the rollups the
        # counters are reconciled with, so no refresh counts it twice.
        ctx.recorder.add_barrier(book.wait_written)
    return book


def _build_cache(ctx: _Context, prices: PriceBook) -> Callable[[CacheEmbed], ResponseCache]:
    from axtui.cache import build_cache

    def make(embed: CacheEmbed) -> ResponseCache:
        # The gateway calls this with its own embedding call, so the cache's provider
        # embedder is limited, recorded and priced like any call.
        return build_cache(ctx.settings.cache, ctx.store, clock=ctx.clock, embed=embed, closers=ctx.closers,
                           behind=ctx.catalog.models_behind)

    return make
