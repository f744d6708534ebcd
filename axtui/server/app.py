"""The gateway's ASGI application.

Two layers: the hot routes (`axtui.server.v1`) are raw ASGI handlers
reached first, by exact path; everything else (``/v1/models``, in
Anthropic's shape for a client that sends ``anthropic-version``, the
metrics and admin API under ``/api``, ``/metrics``, ``/healthz``,
``/readyz``, ``/docs``, ``/openapi.json``) is a FastAPI application. Both
share one `ServerState`, whose gateway is built when the server starts
(FastAPI's lifespan) and closed when it stops, after the calls in flight
have drained, so the recorder's last flush loses nothing.

Each worker process builds its own app and gateway on the same store, so
limits, budgets, cache and metrics that live in the store (or Redis)
agree across workers.
"""

from __future__ import annotations

import codecs
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic_core import from_json
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from axtui import __version__, locations
from axtui.config import Settings, load_settings
from axtui.engine.gateway import Gateway
from axtui.errors import AxError
from axtui.server import anthropic_wire as aw
from axtui.server import wire
from axtui.server._asgi import ClientGone, Receive, Scope, Send, header_dict, read_body, too_large
from axtui.server.admin_api import admin_router
from axtui.server.auth import Authenticator, Identity, check_admin_key
from axtui.server.deps import gateway_of, require_reader, server_state
from axtui.server.errors import error_payload, invalid_from_validation, invalid_json, problem_for_status
from axtui.server.export_api import export_router
from axtui.server.governance_api import governance_router
from axtui.server.guard import RequestGuard, send_refusal
from axtui.server.keys import KeyInfo
from axtui.server.metrics_api import health_router, metrics_router
from axtui.server.monitoring import start_monitoring
from axtui.server.openapi import install_openapi
from axtui.server.responses_api import ResponsesRoutes
from axtui.server.state import ServerState, chain_stop_signals
from axtui.server.stopping import answer_when_cut_off
from axtui.server.v1 import HOT_PATHS, V1Routes

__all__ = ["ENV_NO_AUTH", "AxServer", "app_from_env", "create_app"]

log = logging.getLogger(__name__)

#: Set by ``ax serve --no-auth`` for its worker processes.
ENV_NO_AUTH = "AX_SERVE_NO_AUTH"

GatewayFactory = Callable[[Settings], Awaitable[Gateway]]


async def _default_factory(settings: Settings) -> Gateway:
    from axtui.engine.compose import build_gateway

    return await build_gateway(settings, announce_demo=True)


#: The methods whose body a FastAPI route reads.
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The header every Anthropic SDK request carries: such a client is answered in Anthropic's shapes.
_ANTHROPIC_VERSION = "anthropic-version"


def _anthropic_client(path: str, versioned: bool) -> bool:
    """Whether a request is answered in Anthropic's shapes: ``/v1/messages``, or ``/v1/models`` asked by an
    Anthropic SDK (``versioned``: it sent ``anthropic-version``)."""
    return path.startswith("/v1/messages") or (versioned and path.startswith("/v1/models"))


def _anthropic_scope(scope: Scope) -> bool:
    """Whether a request is answered in Anthropic's shapes (see `_anthropic_client`)."""
    return _anthropic_client(scope["path"], _ANTHROPIC_VERSION.encode() in header_dict(scope))


def _error_response(exc: BaseException, request: Request | None = None) -> JSONResponse:
    anthropic = request is not None and _anthropic_client(request.url.path, _ANTHROPIC_VERSION in request.headers)
    status, body, headers = error_payload(exc, anthropic=anthropic)
    return JSONResponse(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


def _install_error_handlers(api: FastAPI) -> None:
    async def ax_error(request: Request, exc: Exception) -> Response:
        return _error_response(exc, request)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code not in (404, 405) else None
        response = _error_response(problem_for_status(exc.status_code, detail), request)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _error_response(invalid_from_validation(exc.errors(), sourced=True), request)

    async def unexpected(request: Request, exc: Exception) -> Response:
        return _error_response(exc, request)

    api.add_exception_handler(AxError, ax_error)
    api.add_exception_handler(StarletteHTTPException, http_error)
    api.add_exception_handler(RequestValidationError, validation_error)
    api.add_exception_handler(Exception, unexpected)


def _models_routes(api: FastAPI) -> None:
    def card(gateway: Gateway, name: str, created: int) -> wire.ModelCard:
        catalog = gateway.catalog
        if name in catalog.aliases:
            owner = "ax-alias"
        else:
            owners = sorted({d.provider for d in catalog.resolve_embedding(name)})
            owner = ",".join(owners) or "ax"
        return wire.ModelCard(id=name, created=created, owned_by=owner)

    @api.get("/v1/models", response_model=wire.ModelList, tags=["OpenAI-compatible"],
             dependencies=[Depends(require_reader)], summary="List models")
    async def list_models(request: Request) -> wire.ModelList | Response:
        """Every model and alias this gateway serves that the key may call (`owned_by` names the providers).

        An Anthropic SDK (it sends `anthropic-version`) gets Anthropic's page of `model` objects instead,
        paged by `limit`, `after_id` and `before_id`.
        """
        gateway = gateway_of(request)
        created = int(server_state(request).started_at)
        key = _request_key(request)
        names = key.policy.allowed_names(gateway.catalog) if key is not None else gateway.models()
        if _ANTHROPIC_VERSION in request.headers:
            return JSONResponse(aw.model_page(list(names), created, request.query_params))
        return wire.ModelList(data=[card(gateway, name, created) for name in names])

    @api.get("/v1/models/{model:path}", response_model=wire.ModelCard, tags=["OpenAI-compatible"],
             dependencies=[Depends(require_reader)], summary="Retrieve model",
             responses={404: {"description": "Unknown model; the message lists the served ones"}})
    async def get_model(request: Request, model: str) -> wire.ModelCard | Response:
        """One model or alias (Anthropic's `model` object for an Anthropic SDK); 404 listing the served ones
        when unknown."""
        gateway = gateway_of(request)
        key = _request_key(request)
        if key is not None:
            key.policy.check(model, gateway.catalog)  # 403 listing what the key may call
        gateway.catalog.resolve_embedding(model)  # raises UnknownModel with the listing
        created = int(server_state(request).started_at)
        if _ANTHROPIC_VERSION in request.headers:
            return JSONResponse(aw.model_info(model, created))
        return card(gateway, model, created)


def _request_key(request: Request) -> KeyInfo | None:
    """The gateway key the guard found on ``request`` (None for the admin key or no key)."""
    identity: Identity | None = request.scope.get("ax.identity")
    return identity.key if identity is not None else None


class AxServer:
    """The ASGI app: every request through the guard, hot paths straight to their handlers, the rest to FastAPI."""

    def __init__(self, state: ServerState, api: FastAPI, guard: RequestGuard) -> None:
        self.state = state
        self.api = api
        self.guard = guard
        self.v1 = V1Routes(state)
        self.responses = ResponsesRoutes(self.v1)
        self._hot = frozenset(HOT_PATHS) | frozenset(p + "/" for p in HOT_PATHS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] == "HEAD":
                # Whatever a GET answers, without its body (RFC 9110): checked and served as a read.
                scope = {**scope, "method": "GET"}
                send = _headers_only(send)
            refusal = await self.guard.check(scope, header_dict(scope))
            if refusal is not None:
                versioned = _ANTHROPIC_VERSION.encode() in header_dict(scope)
                await send_refusal(send, refusal, anthropic=_anthropic_client(scope["path"], versioned))
                return
            if scope["path"] in self._hot:
                await answer_when_cut_off(self.v1.handle, scope, receive, send, anthropic=_anthropic_scope)
                return
            if ResponsesRoutes.serves(scope["path"]):
                await answer_when_cut_off(self.responses.handle, scope, receive, send, anthropic=_anthropic_scope)
                return
            if scope["method"] in _WRITES and self._routed(scope):
                checked = await self._json_body(scope, receive, send)
                if checked is None:
                    return
                receive = checked
            else:
                receive = self._bounded(scope, receive)
        await self.api(scope, receive, send)

    def _routed(self, scope: Scope) -> bool:
        """Whether one of the FastAPI routes takes this request (its path and method): only its body is read
        here, so an unknown path or method keeps its 404 or 405."""
        return any(route.matches(scope)[0] is Match.FULL for route in self.api.router.routes)

    async def _json_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """A write's body, read whole and parsed as strictly as the hot routes parse theirs; None once refused.

        FastAPI reads a body with Python's json, which takes what no UTF-8
        store or config file can hold (a lone surrogate: ``"\\ud800"``, or its
        bytes) and answers JSON nested past its recursion limit with a
        message that names no fix. Such a body is a 400 ``invalid_json``
        here; any other goes on to the route, replayed as it came.
        """
        try:
            body = await read_body(receive, header_dict(scope), self.state.max_body)
            try:
                from_json(body.removeprefix(codecs.BOM_UTF8) or b"null")
            except ValueError as exc:
                raise invalid_json(str(exc)) from None
        except ClientGone:
            return None
        except AxError as exc:
            await send_refusal(send, exc)
            return None
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()  # what comes after the body: a disconnect
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    def _bounded(self, scope: Scope, receive: Receive) -> Receive:
        """Refuse a body over the limit on the FastAPI routes as well."""
        limit = self.state.max_body
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:

                async def refuse() -> Any:
                    raise StarletteHTTPException(413, too_large(limit).message)

                return refuse
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise StarletteHTTPException(413, too_large(limit).message)
            return message

        return counted


def _headers_only(send: Send) -> Send:
    """``send`` for a HEAD request: the response's status and headers, then an empty body; the rest is dropped."""
    done = False

    async def head(message: Any) -> None:
        nonlocal done
        if done:
            return
        await send(message)
        if message["type"] == "http.response.start":
            done = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return head


def create_app(
    settings: Settings | None = None,
    *,
    no_auth: bool = False,
    gateway_factory: GatewayFactory | None = None,
    watch: Path | None = None,
    host: str | None = None,
    on_started: Callable[[], None] | None = None,
) -> AxServer:
    """The gateway server's ASGI app; the gateway is built when it starts.

    Args:
        settings: the settings; read from the config file (and it watched) when None.
        no_auth: serve without gateway keys (local development only).
        gateway_factory: builds the gateway from the settings (tests pass
            one with an in-process fleet); `build_gateway` by default.
        watch: the config file whose edits to routing, weights and rate-limit
            defaults apply while serving (`axtui.server.reload`).
        host: the address the server listens on: requests must name it (or a
            loopback name, or one of ``server.allowed_hosts``) as their Host.
            None: a loopback address.
        on_started: called once the gateway is built and before the first
            request (``ax serve`` tunes the process there; see `axtui.server.run`).

    Raises:
        ConfigError: on start, the admin key is too short.
    """
    if settings is None:
        watch = watch or locations.config_path()
        settings = load_settings(watch)
    state = ServerState(settings=settings, no_auth=no_auth, config_path=watch)
    factory = gateway_factory or _default_factory

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        server = settings.server
        check_admin_key(server.admin_key_env)  # before anything is built
        gateway = await factory(settings)
        assert gateway.store is not None, "the gateway server needs a store for its keys"
        state.started_at = time.time()
        state.auth = Authenticator(gateway.store, no_auth=no_auth, admin_key_env=server.admin_key_env,
                                   cache_s=server.key_cache_s, user_map=server.user_map)
        # Monitoring's one owner is the gateway: started here, it is stopped by
        # gateway.aclose() before the store closes.
        state.monitoring = start_monitoring(gateway)
        watcher = None
        if watch is not None:
            from axtui.server.reload import ConfigWatcher

            watcher = ConfigWatcher(gateway, watch)
            watcher.start()
        state.bind_loop()
        chain_stop_signals(state.begin_stop)
        state.gateway = gateway
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            drained = await state.drain(server.drain_timeout_s)
            if not drained:
                log.warning("stopping with %d calls still in flight after %.0fs", state.inflight,
                            server.drain_timeout_s)
            state.gateway = None
            if watcher is not None:
                await watcher.aclose()
            await gateway.aclose()

    api = FastAPI(
        title="ax gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    api.state.ax = state
    _install_error_handlers(api)
    _models_routes(api)
    api.include_router(health_router())
    api.include_router(metrics_router())
    api.include_router(admin_router())
    api.include_router(export_router())
    api.include_router(governance_router())
    install_openapi(api)
    return AxServer(state, api, RequestGuard(state, host, settings.server.allowed_hosts))


def app_from_env() -> AxServer:
    """The app for a worker process of ``ax serve`` (uvicorn's factory).

    Settings come from the config file; ``AX_SERVE_NO_AUTH=1`` switches auth
    off; ``AX_SERVE_HOST`` is the address listened on. The process is tuned
    for serving (`axtui.server.run.tune_process`).
    """
    from axtui.server.run import ENV_HOST, tune_process, tune_started

    tune_process()
    return create_app(no_auth=os.environ.get(ENV_NO_AUTH) == "1", host=os.environ.get(ENV_HOST) or None,
                      on_started=tune_started)
