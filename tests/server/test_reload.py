"""A running gateway takes edits to its config file: routing, weights and rate-limit defaults."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from axtui import locations
from axtui.config import load_settings
from axtui.engine.compose import build_gateway
from axtui.errors import RateLimited
from axtui.server.reload import ConfigWatcher
from axtui.types import Caller, ChatRequest

BASE = '[[providers]]\nname = "sim"\nkind = "sim"\nprofile = "fast"\nmodels = ["gpt-4o-mini", "claude-3-5-haiku"]\n'
LIVE = ('\n[routing]\nstrategy = "cost"\n\n[ratelimit]\nglobal_requests = "1/minute"\n'
        '\n[[deployments]]\nmodel = "gpt-4o-mini"\nprovider = "sim"\nweight = 3.0\n')
HELLO = ChatRequest.model_validate({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # A later mtime even on a coarse clock: the watcher compares modification time and size.
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 1))


async def test_edits_to_routing_weights_and_limits_apply_and_broken_files_do_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = locations.config_path()
    write(path, BASE)
    gateway = await build_gateway(load_settings(path))
    watcher = ConfigWatcher(gateway, path)
    try:
        assert not await watcher.check()  # unchanged
        await gateway.call(HELLO, Caller("alice"))
        await gateway.call(HELLO, Caller("alice"))

        write(path, BASE + LIVE)
        assert await watcher.check()
        assert gateway.router.default_strategy == "cost" and gateway.settings.routing.strategy == "cost"
        assert gateway.catalog.get("sim/gpt-4o-mini").weight == 3.0
        await gateway.call(HELLO, Caller("bob"))
        with pytest.raises(RateLimited):
            await gateway.call(HELLO, Caller("bob"))

        with caplog.at_level(logging.WARNING, logger="axtui.server.reload"):
            write(path, BASE + '\n[routing]\nstrategy = "fastest"\n')
            assert not await watcher.check()
            assert "not applied" in caplog.text and "fastest" in caplog.text
            write(path, BASE + '\n[routing]\n[[routing.rules]]\nname = "r"\nmodel = "gpt-4o-mini"\n'
                  'deployments = ["nowhere/model-9"]\n')
            assert not await watcher.check()
            assert "nowhere/model-9" in caplog.text
            write(path, BASE.replace("fast", "flaky") + LIVE)
            assert not await watcher.check()  # nothing live changed; the provider change waits for a restart
            assert "[providers] apply when ax serve restarts" in caplog.text
        assert gateway.router.default_strategy == "cost"  # what was applied last still stands
        write(path, BASE)  # the entries go: the defaults come back
        assert await watcher.check()
        assert gateway.router.default_strategy == "latency" and gateway.catalog.get("sim/gpt-4o-mini").weight == 1.0
        await gateway.call(HELLO, Caller("bob"))
    finally:
        await gateway.aclose()


async def test_a_routing_edit_on_the_demo_fleet_needs_no_restart(caplog: pytest.LogCaptureFixture) -> None:
    path = locations.config_path()
    write(path, '[cache]\nenabled = false\n')  # no providers: the gateway serves the demo fleet
    gateway = await build_gateway(load_settings(path))
    watcher = ConfigWatcher(gateway, path)
    try:
        with caplog.at_level(logging.WARNING, logger="axtui.server.reload"):
            write(path, '[cache]\nenabled = false\n\n[routing]\nstrategy = "cost"\n')
            assert await watcher.check()
        assert gateway.router.default_strategy == "cost"
        assert "restart" not in caplog.text, caplog.text
    finally:
        await gateway.aclose()
