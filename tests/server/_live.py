"""A live `ax serve` app on 127.0.0.1, in a background thread, for tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from sqlalchemy import text

from axtui.config import ProviderConfig, Settings
from axtui.engine.gateway import Gateway
from axtui.server.app import AxServer, create_app
from axtui.server.run import uvicorn_config

from ..support import free_port

#: The admin key the tests' gateways are given (``AX_ADMIN_KEY``, by `admin_live`).
ADMIN = "admin-secret-for-tests-0123456789"


def fast_fleet(**server: Any) -> Settings:
    """The demo fleet's providers, instant and never failing, in process."""
    from axtui.providers.sim.fleet import demo_aliases, demo_fleet

    providers = [
        ProviderConfig(name=p.name, kind="sim", profile="fast", region=p.region, models=p.model_names)
        for p in demo_fleet()
    ]
    data: dict[str, Any] = {"providers": [p.model_dump() for p in providers],
                            "routing": {"aliases": demo_aliases()}}
    if server:
        data["server"] = server
    return Settings.model_validate(data)


class LiveServer:
    """uvicorn serving an `AxServer` in a thread; ``url`` is its base URL."""

    def __init__(
        self,
        settings: Settings,
        *,
        no_auth: bool = False,
        gateway_factory: Callable[[Settings], Awaitable[Gateway]] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app: AxServer = create_app(settings, no_auth=no_auth, gateway_factory=gateway_factory)
        config = uvicorn_config(self.app, settings, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="ax-test-server", daemon=True)

    @property
    def gateway(self) -> Gateway:
        """The running gateway."""
        assert self.app.state.gateway is not None
        return self.app.state.gateway

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server's event loop."""
        return self.app.state._loop  # type: ignore[return-value]

    def calls(self, where: str = "1 = 1", **params: Any) -> list[dict[str, Any]]:
        """The recorded calls matching ``where`` (SQL, with ``:name`` parameters), oldest first, after a flush."""
        gateway = self.gateway
        assert gateway.recorder is not None and gateway.store is not None
        gateway.recorder.flush()
        with gateway.store.connect() as conn:
            rows = conn.execute(text(f"SELECT * FROM calls WHERE {where} ORDER BY ts, id"), params).mappings()
            return [dict(r) for r in rows]

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
