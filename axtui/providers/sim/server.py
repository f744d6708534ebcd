"""`ax sim serve`: the simulated fleet over real HTTP, in three wire formats.

Routes (any model of the profile is served by any format):

| route | format |
| ----- | ------ |
| ``POST /v1/chat/completions``, ``POST /v1/responses``, ``POST /v1/embeddings``, ``GET /v1/models`` | OpenAI |
| ``POST /v1/messages`` (+ ``/count_tokens``), ``GET /v1/models`` with an ``anthropic-version`` header | Anthropic |
| ``POST /v1beta/models/{model}:generateContent`` / ``:streamGenerateContent`` / ``:embedContent`` / ``:batchEmbedContents``, ``GET /v1beta/models`` | Gemini |
| ``GET /``, ``GET /healthz`` | what is served; liveness |

Every route also exists under ``/{provider}/…`` (e.g.
``/azure/v1/chat/completions``) to play that provider's latency and faults;
without the prefix a model is served by the first provider that has it.
Keys are accepted, whatever they are. A request header
``X-Sim-Fault: 500 | 503 | 429 | timeout | malformed | cut | 401`` forces a
fault: 429 carries ``Retry-After``; ``timeout`` hangs (up to the profile's
``hang_s``, until the client goes away); ``malformed`` answers 200 with
invalid JSON; ``cut`` ends a stream halfway without its end marker (a plain
answer loses the second half of its body and the connection).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.errors import ProviderError
from axtui.providers.sim.profiles import resolve_profile
from axtui.providers.sim.simulate import ChatPlan, Outcome, Simulator, fault_error, parse_fault
from axtui.providers.sim.spec import Faults, Profile, ProviderProfile
from axtui.providers.sim.wire import ChatCall, Wire, bad_request
from axtui.providers.sim.wire_anthropic import AnthropicWire
from axtui.providers.sim.wire_gemini import GeminiWire
from axtui.providers.sim.wire_openai import OpenAIWire
from axtui.providers.sim.wire_responses import ResponsesWire
from axtui.tokens import estimate_prompt_tokens

__all__ = ["DEFAULT_PORT", "FAULT_HEADER", "RESPONSES_WIRE", "SimServer", "build_app", "run", "server_state"]

#: The port `run` listens on unless told otherwise (`ax serve` uses 8787).
DEFAULT_PORT = 8790
#: The request header that forces a fault.
FAULT_HEADER = "X-Sim-Fault"

_OPENAI, _ANTHROPIC, _GEMINI, _RESPONSES = OpenAIWire(), AnthropicWire(), GeminiWire(), ResponsesWire()
#: The Responses API's wire, for the clouds that serve it too (Azure).
RESPONSES_WIRE = _RESPONSES
#: How many Responses requests `SimServer.received` keeps.
_RECEIVED = 32
_RESERVED = {"v1", "v1beta", "healthz"}
# How often a hanging handler checks whether its client is still there.
_HANG_POLL_S = 0.05
# What each simulated provider says its per-minute limits are.
_LIMIT_REQUESTS, _LIMIT_TOKENS = 10_000, 2_000_000


class SimServer:
    """The state behind one app: profile, simulator, counters.

    Attributes:
        served: calls handled per ``provider/model`` (failed ones included).
        received: the last Responses API requests, newest last: each its body and ``traceparent``
            header (tests check what a gateway sent upstream).
    """

    def __init__(self, profile: Profile, *, seed: int = 0, clock: Clock | None = None) -> None:
        self.profile = profile
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.simulator = Simulator(seed=seed, clock=self.clock)
        self.served: dict[str, int] = {}
        self.received: deque[dict[str, Any]] = deque(maxlen=_RECEIVED)
        self._window: dict[str, tuple[int, int, int]] = {}

    def provider(self, request: web.Request, model: str) -> ProviderProfile:
        """The provider the URL names, else the first serving ``model``."""
        name = request.match_info.get("provider")
        if name:
            found = self.profile.provider(name)
            if found is None:
                raise bad_request(
                    f"no simulated provider {name!r}; providers: {', '.join(self.profile.provider_names)}", status=404
                )
            return found
        serving = self.profile.serving(model)
        if serving is None:
            raise bad_request(
                f"The model {model!r} does not exist here; models served: {', '.join(self.profile.model_names)}",
                status=404,
            )
        return serving

    def providers(self, request: web.Request) -> list[ProviderProfile]:
        """The providers a listing covers: the one named in the URL, or all."""
        name = request.match_info.get("provider")
        if name:
            return [self.provider(request, "")]
        return list(self.profile.providers)

    def limits(self, provider: str, tokens: int) -> tuple[int, int, float]:
        """Remaining requests and tokens this minute, and seconds to reset."""
        now = self.clock.now()
        minute = int(now // 60)
        start, requests, used = self._window.get(provider, (minute, 0, 0))
        if start != minute:
            start, requests, used = minute, 0, 0
        requests, used = requests + 1, used + tokens
        self._window[provider] = (start, requests, used)
        return max(0, _LIMIT_REQUESTS - requests), max(0, _LIMIT_TOKENS - used), (minute + 1) * 60 - now


_STATE = web.AppKey("sim_server", SimServer)


def _fault(request: web.Request) -> Outcome | None:
    value = request.headers.get(FAULT_HEADER)
    if not value:
        return None
    try:
        return parse_fault(value)
    except ValueError as exc:
        raise bad_request(str(exc)) from None


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None


def _error(wire: Wire, exc: ProviderError) -> web.Response:
    status = wire.error_status(exc)
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if status == 429 and retry_after:
        headers["Retry-After"] = str(math.ceil(retry_after))
    return web.json_response(wire.error_body(exc, status), status=status, headers=headers)


def _limit_headers(wire: Wire, sim: SimServer, provider: str, tokens: int) -> dict[str, str]:
    requests, left, reset = sim.limits(provider, tokens)
    if wire is _OPENAI or wire is _RESPONSES:
        return {
            "x-ratelimit-limit-requests": str(_LIMIT_REQUESTS),
            "x-ratelimit-limit-tokens": str(_LIMIT_TOKENS),
            "x-ratelimit-remaining-requests": str(requests),
            "x-ratelimit-remaining-tokens": str(left),
            "x-ratelimit-reset-requests": f"{reset:.3f}s",
            "x-ratelimit-reset-tokens": f"{reset:.3f}s",
        }
    if wire is _ANTHROPIC:
        return {
            "anthropic-ratelimit-requests-limit": str(_LIMIT_REQUESTS),
            "anthropic-ratelimit-requests-remaining": str(requests),
            "anthropic-ratelimit-tokens-limit": str(_LIMIT_TOKENS),
            "anthropic-ratelimit-tokens-remaining": str(left),
        }
    return {}


async def _hang(request: web.Request, sim: SimServer, seconds: float) -> bool:
    """Wait ``seconds`` or until the client leaves; True if it is still there."""
    waited = 0.0
    while waited < seconds:
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        step = min(_HANG_POLL_S, seconds - waited)
        await sim.clock.sleep(step)
        waited += step
    return True


async def _wait(sim: SimServer, seconds: float) -> None:
    if seconds > 0:
        await sim.clock.sleep(seconds)


async def _refuse(request: web.Request, sim: SimServer, wire: Wire, outcome: Outcome, error: ProviderError, *,
                  first_s: float, hang_s: float) -> web.StreamResponse:
    """Answer a failed call the way the provider would, after as long."""
    if outcome == "timeout":
        if not await _hang(request, sim, hang_s):
            # Nobody is listening any more; the status only shows in logs.
            return web.Response(status=499)
    elif outcome in ("rate_limited", "auth"):
        await _wait(sim, first_s * 0.1)
    else:
        await _wait(sim, first_s)
    return _error(wire, error)


async def _truncated(request: web.Request, data: bytes) -> web.StreamResponse:
    """Send half of a body that promised to be whole, then drop the connection."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(data)
    await response.prepare(request)
    await response.write(data[: len(data) // 2])
    if request.transport is not None:
        request.transport.close()
    return response


async def _body_answer(request: web.Request, outcome: Outcome, body: Any,
                       headers: dict[str, str] | None = None) -> web.StreamResponse:
    """A JSON answer, or its ``malformed`` (half, status 200) or ``cut`` (dropped) version."""
    data = json.dumps(body).encode()
    if outcome == "malformed":
        return web.Response(body=data[: len(data) // 2], content_type="application/json", headers=headers)
    if outcome == "cut":
        return await _truncated(request, data)
    return web.Response(body=data, content_type="application/json", headers=headers)


async def _stream_answer(request: web.Request, sim: SimServer, wire: Wire, plan: ChatPlan, call: ChatCall,
                         headers: dict[str, str]) -> web.StreamResponse:
    """Play a plan out as server-sent events, piece by piece, in real (clock) time."""
    created = int(sim.clock.now())
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    for event in wire.stream_open(plan, call, created):
        await response.write(event)
    if plan.outcome == "malformed":
        await _wait(sim, plan.ttft_s)
        await response.write(wire.stream_garbage(plan))
        await response.write_eof()
        return response
    count = plan.cut_at if plan.outcome == "cut" else len(plan.chunks)
    last = len(plan.chunks) - 1
    for i, (piece, delay) in enumerate(zip(plan.chunks[:count], plan.delays, strict=False)):
        await _wait(sim, delay)
        await response.write(wire.stream_piece(plan, call, piece, first=i == 0, last=i == last, created=created))
    # A cut stream just ends: no finish, no usage, no end marker.
    if plan.outcome != "cut":
        for event in wire.stream_tools(plan, call, created):
            await response.write(event)
        for event in wire.stream_close(plan, call, created):
            await response.write(event)
    await response.write_eof()
    return response


async def _chat(request: web.Request, wire: Wire, path_model: str | None = None,
                stream: bool | None = None) -> web.StreamResponse:
    sim = request.app[_STATE]
    try:
        if wire is _ANTHROPIC and "anthropic-version" not in request.headers:
            raise bad_request("anthropic-version: header is required")
        fault = _fault(request)
        body = await _body(request)
        if wire is _RESPONSES:
            sim.received.append({"body": body, "traceparent": request.headers.get("traceparent")})
        call = wire.parse_chat(body, path_model, stream=stream)
        provider = sim.provider(request, call.model)
        key = f"{provider.name}/{call.model}"
        index = sim.served.get(key, 0)
        plan = sim.simulator.plan_chat(provider, call.request, model=call.model, index=index, stream=call.stream,
                                       fault=fault)
        sim.served[key] = index + 1
    except ProviderError as exc:
        return _error(wire, exc)
    error = plan.error(stream=call.stream)
    if error is not None and plan.outcome not in ("malformed", "cut"):
        return await _refuse(request, sim, wire, plan.outcome, error, first_s=plan.ttft_s, hang_s=plan.hang_s)
    headers = _limit_headers(wire, sim, provider.name, plan.usage.total_tokens)
    if call.stream and wire.streams_events(request.query):
        return await _stream_answer(request, sim, wire, plan, call, headers)
    await _wait(sim, plan.total_s)
    created = int(sim.clock.now())
    body = wire.stream_json(plan, call, created) if call.stream else wire.chat_body(plan, call, created)
    return await _body_answer(request, plan.outcome, body, headers)


async def _embed(request: web.Request, wire: Wire, path_model: str | None = None,
                 batch: bool = True) -> web.StreamResponse:
    sim = request.app[_STATE]
    try:
        fault = _fault(request)
        call = wire.parse_embed(await _body(request), path_model, batch=batch)
        provider = sim.provider(request, call.model)
        key = f"{provider.name}/{call.model}"
        index = sim.served.get(key, 0)
        plan = sim.simulator.plan_embed(provider, call.inputs, model=call.model, index=index,
                                        dimensions=call.dimensions, fault=fault)
        sim.served[key] = index + 1
    except ProviderError as exc:
        return _error(wire, exc)
    error = plan.error()
    if error is not None and plan.outcome not in ("malformed", "cut"):
        return await _refuse(request, sim, wire, plan.outcome, error, first_s=plan.latency_s, hang_s=plan.hang_s)
    await _wait(sim, plan.latency_s)
    headers = _limit_headers(wire, sim, provider.name, plan.usage.input_tokens)
    return await _body_answer(request, plan.outcome, wire.embed_body(plan, call, batch=batch), headers)


async def _models(request: web.Request, wire: Wire) -> web.StreamResponse:
    sim = request.app[_STATE]
    try:
        fault = _fault(request)
        providers = sim.providers(request)
    except ProviderError as exc:
        return _error(wire, exc)
    faults = providers[0].faults if providers else Faults.none()
    error = fault_error(fault, providers[0].name if providers else "sim", "models", faults.retry_after_s) if (
        fault not in (None, "malformed", "cut")) else None
    if fault is not None and error is not None:
        return await _refuse(request, sim, wire, fault, error, first_s=0.0, hang_s=faults.hang_s)
    return await _body_answer(request, fault or "ok", wire.models_body(providers))


async def openai_chat(request: web.Request) -> web.StreamResponse:
    """OpenAI ``POST /v1/chat/completions``."""
    return await _chat(request, _OPENAI)


async def openai_responses(request: web.Request) -> web.StreamResponse:
    """OpenAI ``POST /v1/responses``, natively (see `axtui.providers.sim.wire_responses`)."""
    return await _chat(request, _RESPONSES)


async def openai_embeddings(request: web.Request) -> web.StreamResponse:
    """OpenAI ``POST /v1/embeddings``."""
    return await _embed(request, _OPENAI)


async def v1_models(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models``: Anthropic's listing for Anthropic clients, else OpenAI's."""
    wire: Wire = _ANTHROPIC if "anthropic-version" in request.headers else _OPENAI
    return await _models(request, wire)


async def anthropic_messages(request: web.Request) -> web.StreamResponse:
    """Anthropic ``POST /v1/messages``."""
    return await _chat(request, _ANTHROPIC)


async def anthropic_count_tokens(request: web.Request) -> web.StreamResponse:
    """Anthropic ``POST /v1/messages/count_tokens``: the prompt's tokens, as the simulation counts them."""
    sim = request.app[_STATE]
    try:
        if "anthropic-version" not in request.headers:
            raise bad_request("anthropic-version: header is required")
        body = await _body(request)
        if isinstance(body, dict) and "max_tokens" in body:
            raise bad_request("max_tokens: Extra inputs are not permitted")
        call = _ANTHROPIC.parse_chat({**body, "max_tokens": 1} if isinstance(body, dict) else body, None,
                                     stream=False)
        sim.provider(request, call.model)
    except ProviderError as exc:
        return _error(_ANTHROPIC, exc)
    return web.json_response({"input_tokens": estimate_prompt_tokens(call.request)})


async def gemini_models(request: web.Request) -> web.StreamResponse:
    """Gemini ``GET /v1beta/models``."""
    return await _models(request, _GEMINI)


async def gemini_action(request: web.Request) -> web.StreamResponse:
    """Gemini ``POST /v1beta/models/{model}:{method}``."""
    model, _, method = request.match_info["target"].rpartition(":")
    if method == "generateContent":
        return await _chat(request, _GEMINI, model, stream=False)
    if method == "streamGenerateContent":
        return await _chat(request, _GEMINI, model, stream=True)
    if method in ("embedContent", "batchEmbedContents"):
        return await _embed(request, _GEMINI, model, batch=method == "batchEmbedContents")
    return _error(_GEMINI, bad_request(f"unknown method {method!r}; this server knows generateContent, "
                                       f"streamGenerateContent, embedContent and batchEmbedContents", status=404))


async def index(request: web.Request) -> web.StreamResponse:
    """``GET /``: the profile, its providers and models, and the call counts."""
    sim = request.app[_STATE]
    return web.json_response({
        "profile": sim.profile.name,
        "description": sim.profile.description,
        "providers": {p.name: {"region": p.region, "models": p.model_names} for p in sim.profile.providers},
        "served": sim.served,
        "fault_header": FAULT_HEADER,
    })


async def healthz(request: web.Request) -> web.StreamResponse:
    """``GET /healthz``: the server is up."""
    return web.json_response({"ok": True})


def build_app(profile: str | Profile = "demo", *, seed: int = 0, clock: Clock | None = None) -> web.Application:
    """The simulated fleet as an aiohttp application.

    Args:
        profile: a profile or its name (``demo``, ``fast``, ``flaky``,
            ``degraded`` or a registered one).
        seed: the same seed replays the same outcomes for the same calls.
        clock: times latency and degradation windows; the real clock by default.

    Raises:
        ConfigError: the profile name is unknown.
    """
    resolved = resolve_profile(profile)
    for name in resolved.provider_names:
        if name in _RESERVED:
            raise ValueError(f"a simulated provider cannot be named {name!r}: it is a route of the server")
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[_STATE] = SimServer(resolved, seed=seed, clock=clock)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    for prefix in ("", "/{provider}"):
        app.router.add_post(prefix + "/v1/chat/completions", openai_chat)
        app.router.add_post(prefix + "/v1/responses", openai_responses)
        app.router.add_post(prefix + "/v1/embeddings", openai_embeddings)
        app.router.add_get(prefix + "/v1/models", v1_models)
        app.router.add_post(prefix + "/v1/messages", anthropic_messages)
        app.router.add_post(prefix + "/v1/messages/count_tokens", anthropic_count_tokens)
        app.router.add_get(prefix + "/v1beta/models", gemini_models)
        app.router.add_post(prefix + "/v1beta/models/{target}", gemini_action)
    # Azure, Bedrock and Vertex AI, each in its own module (imported here: they build on this one).
    from axtui.providers.sim.clouds import mount_clouds

    mount_clouds(app)
    return app


def server_state(app: web.Application) -> SimServer:
    """The `SimServer` behind an app made by `build_app` (for its counters)."""
    return app[_STATE]


async def run(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    profile: str | Profile = "demo",
    seed: int = 0,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the simulated fleet until cancelled.

    Args:
        host: the address to bind; loopback unless told otherwise.
        port: the port; 0 picks a free one (``on_ready`` gets the URL).
        profile: a profile or its name.
        seed: the simulation's seed.
        on_ready: called with the base URL (``http://host:port``) once listening.
    """
    app = build_app(profile, seed=seed)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        if on_ready is not None:
            bound = runner.addresses[0][1] if runner.addresses else port
            on_ready(f"http://{host}:{bound}")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
