"""`ConfigWatcher`: ``ax serve`` applies edits to its config file while it runs.

Every second each worker looks at the config file's modification time and
size; when they change it reads the file again and publishes the new
settings on the gateway's bus (`SettingsChanged`), where the router (``[routing]``,
aliases, deployment weights) and the rate limiter (``[ratelimit]``
defaults) take them for the calls that follow. So routing saved from the
dashboard, or written by hand, reaches a running gateway within a second.

A file that does not parse, or routing that names a model nobody serves,
is logged with what is wrong and the running settings stay. Changes to
other sections (providers, cache, server, …) need a restart, and the log
says which.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from axtui.aio import cancel_and_wait
from axtui.bus import SettingsChanged
from axtui.config import Settings, load_settings
from axtui.errors import AxError

__all__ = ["ConfigWatcher"]

log = logging.getLogger(__name__)

#: What a running gateway applies; every other section needs a restart.
LIVE_SECTIONS = frozenset({"routing", "ratelimit", "deployments"})


class ConfigWatcher:
    """Watches ``path`` and applies what a running gateway can take of it.

    Args:
        gateway: the running gateway (its ``settings`` and ``bus``).
        path: the config file the gateway was started from.
        interval_s: how often to look.
    """

    def __init__(self, gateway: Any, path: Path, interval_s: float = 1.0) -> None:
        self.gateway = gateway
        self.path = path
        self.interval_s = interval_s
        self._seen = self._stamp()
        self._task: asyncio.Task[None] | None = None

    def _stamp(self) -> tuple[float, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size)

    def start(self) -> None:
        """Look every ``interval_s`` on the running loop until `aclose`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ax-config-watch")

    async def aclose(self) -> None:
        """Stop watching."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # the watcher must outlive any one bad look
                log.exception("config: checking %s failed", self.path)

    async def check(self) -> bool:
        """Look once; True when new settings were applied."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            new = await asyncio.to_thread(_read, self.path)
        except AxError as exc:
            log.warning("config: %s changed but was not applied: %s", self.path, exc.message)
            return False
        return self.apply(new)

    def apply(self, new: Settings) -> bool:
        """Apply ``new`` to the running gateway: routing, weights and rate-limit defaults."""
        old: Settings = self.gateway.settings
        restart = sorted(name for name in Settings.model_fields
                         if name not in LIVE_SECTIONS and getattr(new, name) != getattr(old, name))
        if restart:
            log.warning("config: changes to %s apply when ax serve restarts", ", ".join(f"[{n}]" for n in restart))
        live = {name: getattr(new, name) for name in LIVE_SECTIONS}
        if all(live[name] == getattr(old, name) for name in LIVE_SECTIONS):
            return False
        applied = old.model_copy(update=live)
        router = getattr(self.gateway, "router", None)
        if hasattr(router, "configure"):
            from axtui.routing.router import check_references

            problems = check_references(new.routing, router.catalog)  # type: ignore[union-attr]
            if problems:
                log.warning("config: %s not applied: %s", self.path, "; ".join(problems))
                return False
        # A deployment whose entry went away weighs 1 again (the router sets the listed ones).
        listed = {_dep_id(d) for d in new.deployments}
        catalog = getattr(router, "catalog", None)
        for d in old.deployments:
            dep = catalog.get(_dep_id(d)) if catalog is not None and _dep_id(d) not in listed else None
            if dep is not None:
                dep.weight = 1.0
        self.gateway.settings = applied
        self.gateway.bus.publish(SettingsChanged(applied))
        log.info("config: applied the new [routing], [ratelimit] and deployment weights from %s", self.path)
        return True


def _read(path: Path) -> Settings:
    """The file's settings as the gateway runs them: with the demo fleet when it names no provider.

    Compared with the raw file, the running settings would always differ in
    ``[providers]`` and ``[prices]`` (the fleet's), and every edit would be
    logged as needing a restart.
    """
    from axtui.engine.compose import effective_providers

    return effective_providers(load_settings(path))


def _dep_id(d: Any) -> str:
    return f"{d.provider}/{d.upstream_model or d.model}"
