"""Making the gateway's router: warm from the store, wired to the recorder and bus.

`build_router` is what `axtui.engine.compose` calls. The router starts
with the health the store remembers (recent calls and failed attempts), so
a restarted gateway does not send traffic back to a deployment that was
failing a minute ago; its failed attempts and circuit changes are written
with each recorder batch; and a ``config`` event on the bus (settings
saved by the dashboard) applies new rules, A/B splits and weights without
a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from axtui.bus import Event, EventBus, SettingsChanged
from axtui.clock import Clock
from axtui.config import RoutingConfig, Settings
from axtui.errors import ConfigError
from axtui.ports import PriceBook
from axtui.routing.catalog import Catalog
from axtui.routing.history import event_writer, warm
from axtui.routing.router import HealthRouter
from axtui.store import Store
from axtui.store.recorder import Recorder
from axtui.validation import field_problems, problems_text

__all__ = ["apply_settings", "build_router", "save_routing"]

log = logging.getLogger(__name__)


def build_router(
    catalog: Catalog,
    settings: Settings,
    *,
    clock: Clock,
    prices: PriceBook | None = None,
    store: Store | None = None,
    recorder: Recorder | None = None,
    bus: EventBus | None = None,
    closers: list[Callable[[], Any]] | None = None,
) -> HealthRouter:
    """The router for a gateway.

    Args:
        catalog: deployments and aliases.
        settings: the gateway's settings (``[routing]``, ``[budgets]`` typical output).
        clock: the gateway's clock.
        prices: the price book (the cost strategy's estimates).
        store: replayed for recent health when given.
        recorder: failed attempts and circuit changes are written with its batches.
        bus: ``config`` events carrying new `Settings` reconfigure the router.
        closers: where to leave the bus unsubscription for gateway close.

    Raises:
        ConfigError: a rule or A/B test names something the catalog does not serve.
    """
    router = HealthRouter(
        catalog,
        settings.routing,
        clock=clock,
        prices=prices,
        typical_output=settings.budgets.typical_output_tokens,
    )
    if store is not None:
        replayed = warm(router.health, store, catalog, settings.routing)
        if replayed:
            log.debug("routing: health warmed from %d stored observations", replayed)
    if recorder is not None:
        recorder.add_hook(event_writer(router, clock))
    if bus is not None:
        def on_event(event: Event) -> None:
            if isinstance(event, SettingsChanged):
                apply_settings(router, event.settings)

        sub = bus.subscribe(on_event)
        if closers is not None:
            closers.append(sub.close)
    return router


def apply_settings(router: HealthRouter, settings: Settings) -> bool:
    """Apply saved settings to a running router: routing section, aliases, deployment weights.

    Returns False (and keeps the running configuration) when the new
    routing section names something this gateway does not serve.
    """
    # Aliases only add up: the demo fleet's own aliases are not in a saved file.
    router.catalog.aliases.update({k: list(v) for k, v in settings.routing.aliases.items()})
    try:
        router.configure(settings.routing)
    except ConfigError as exc:
        log.warning("routing: new settings not applied: %s", exc.message)
        return False
    for d in settings.deployments:
        dep = router.catalog.get(f"{d.provider}/{d.upstream_model or d.model}")
        if dep is not None:
            dep.weight = d.weight
    return True


def save_routing(
    path: Path, routing: RoutingConfig, weights: dict[str, float], catalog: Catalog, store: Store | None = None
) -> Settings:
    """Write a routing section and deployment weights into the config file at ``path``.

    The rest of the file is kept as it is (aliases too). A running
    ``ax serve`` applies the result within a second (`axtui.server.reload`).
    The change is audited in ``store`` (the default store when None).

    Raises:
        ConfigError: the new settings are invalid or name something ``catalog``
            does not serve; nothing is written.
    """
    from axtui.config import DeploymentConfig, load_settings, save_settings
    from axtui.routing.router import check_references

    problems = check_references(routing, catalog)
    if problems:
        raise ConfigError("not saved: " + "; ".join(problems))
    base = load_settings(path)
    deployments = list(base.deployments)
    by_id = {f"{d.provider}/{d.upstream_model or d.model}": i for i, d in enumerate(deployments)}
    for dep_id, weight in weights.items():
        dep = catalog.get(dep_id)
        if dep is None:
            raise ConfigError(f"not saved: no deployment {dep_id!r} is served")
        if dep_id in by_id:
            i = by_id[dep_id]
            deployments[i] = deployments[i].model_copy(update={"weight": weight})
        elif weight != 1.0:
            deployments.append(DeploymentConfig(model=dep.model, provider=dep.provider,
                                                upstream_model=dep.upstream_model, weight=weight))
    data = base.model_dump()
    data["routing"] = {**routing.model_dump(), "aliases": base.routing.aliases}
    data["deployments"] = [d.model_dump() for d in deployments]
    try:
        new = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"not saved: {problems_text(field_problems(exc))}") from None
    save_settings(new, path)
    _audit_routing(store, path, base, new)
    return new


def _audit_routing(store: Store | None, path: Path, before: Settings, after: Settings) -> None:
    from axtui.store.audit import record_change

    def view(s: Settings) -> dict[str, Any]:
        return {"routing": s.routing.model_dump(mode="json", exclude={"aliases"}),
                "weights": {f"{d.provider}/{d.upstream_model or d.model}": d.weight for d in s.deployments}}

    own = store is None
    target = store or Store.open()
    try:
        record_change(target, "routing.save", f"config:{path.name}", view(before), view(after))
    finally:
        if own:
            target.close()
