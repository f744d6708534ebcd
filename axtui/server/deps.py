"""FastAPI dependencies every router shares: the server's state, its gateway, who is asking.

Routers import these, never the app, so the app can import the routers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from axtui.engine.gateway import Gateway
from axtui.server.auth import Authenticator, Viewer
from axtui.server.errors import problem_for_status
from axtui.server.state import ServerState

__all__ = ["gateway_of", "monitoring_of", "require_admin", "require_reader", "server_state", "viewer_of"]

_bearer = HTTPBearer(auto_error=False, scheme_name="bearerAuth", description="A gateway key, or the admin key")
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def server_state(request: Request) -> ServerState:
    """The state of the server handling ``request``."""
    state: ServerState = request.app.state.ax
    return state


def _ready(state: ServerState) -> Authenticator:
    if state.auth is None or state.gateway is None:
        raise problem_for_status(503, "the gateway is starting or stopping; retry in a moment")
    return state.auth


def gateway_of(request: Request) -> Gateway:
    """The running gateway, or a 503 while starting or stopping."""
    state = server_state(request)
    _ready(state)
    assert state.gateway is not None
    return state.gateway


def monitoring_of(request: Request) -> Any:
    """The live metrics, alerts and Prometheus attached to the gateway, or a 503."""
    state = server_state(request)
    gateway_of(request)
    if state.monitoring is None:
        raise problem_for_status(503, "live metrics are not running in this server")
    return state.monitoring


async def viewer_of(request: Request) -> Viewer:
    """Who reads: the admin (admin key, or ``--no-auth``) or one key's tenant."""
    auth = _ready(server_state(request))
    # The guard identified the request before its body was read; no second look at the key.
    return await auth.viewer(dict(request.scope["headers"]), request.scope.get("ax.identity"))


async def require_reader(request: Request, _: _Credentials) -> None:
    """Dependency: a gateway key or the admin key (nothing with ``--no-auth``)."""
    await viewer_of(request)


async def require_admin(request: Request, _: _Credentials) -> None:
    """Dependency: the admin key (nothing with ``--no-auth``); the request's changes are audited as ``admin``."""
    from axtui.store.audit import act_as

    auth = _ready(server_state(request))
    auth.require_admin(dict(request.scope["headers"]))
    act_as("admin", "api")
