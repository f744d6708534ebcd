"""`ax sim serve` in a background thread, and a gateway whose real adapters call it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
from aiohttp import web

from axtui.config import Settings
from axtui.engine.compose import build_gateway
from axtui.engine.gateway import Gateway
from axtui.providers.sim import build_app

from .._live import LiveServer, free_port

#: The environment variable the gateway's providers read their key from.
KEY_ENV = "AX_TEST_SIM_UPSTREAM_KEY"

#: model -> (provider name, provider kind, path under the sim server)
UPSTREAMS: dict[str, tuple[str, str, str]] = {
    "gpt-4o-mini": ("oai", "openai", "/v1"),
    "claude-haiku-4-5": ("claude", "anthropic", "/v1"),
    "gemini-2.5-flash": ("gem", "gemini", "/v1beta"),
}


class SimUpstream:
    """The simulated fleet over real HTTP on 127.0.0.1 (profile ``fast``), in its own thread and loop."""

    def __init__(self, seed: int = 0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self.app = build_app("fast", seed=seed)
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None)
        self._thread = threading.Thread(target=self._loop.run_forever, name="ax-test-sim", daemon=True)

    def start(self) -> SimUpstream:
        self._thread.start()

        async def up() -> None:
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(up(), self._loop).result(30)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


def upstream_settings(sim_url: str) -> Settings:
    """A gateway with one OpenAI, one Anthropic and one Gemini adapter, all pointed at the sim server."""
    providers: list[dict[str, Any]] = [
        {"name": name, "kind": kind, "base_url": sim_url + path, "api_key_env": KEY_ENV, "models": [model],
         "max_retries": 0}
        for model, (name, kind, path) in UPSTREAMS.items()
    ]
    embeddings = [{"model": "text-embedding-3-small", "provider": "oai"},
                  {"model": "text-embedding-004", "provider": "gem"}]
    return Settings.model_validate({"providers": providers, "deployments": embeddings,
                                    "server": {"key_cache_s": 0}})


def mock_upstreams(handler: Any) -> LiveServer:
    """A started gateway (no keys) whose Anthropic (``claude-sonnet-4-5``) and OpenAI (``gpt-4o-mini``)
    providers answer through one `httpx.MockTransport` calling ``handler``; their key is read from `KEY_ENV`."""
    settings = Settings.model_validate({"providers": [
        {"name": "claude", "kind": "anthropic", "api_key_env": KEY_ENV, "models": ["claude-sonnet-4-5"],
         "max_retries": 0},
        {"name": "oai", "kind": "openai", "api_key_env": KEY_ENV, "models": ["gpt-4o-mini"], "max_retries": 0},
    ]})

    async def factory(settings: Settings) -> Gateway:
        return await build_gateway(settings, transport=httpx.MockTransport(handler))

    return LiveServer(settings, no_auth=True, gateway_factory=factory).start()
