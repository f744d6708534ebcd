"""Running the gateway server: uvicorn with uvloop and httptools.

One worker runs in this process; ``workers > 1`` starts that many
processes on one socket (uvicorn's supervisor), each building its own app
and gateway on the same store, so whatever must agree across them
(limits, budgets, cache, records) lives in the store or in Redis.

A graceful stop (SIGINT, SIGTERM): the listening socket closes, the calls
in flight finish (up to ``server.drain_timeout_s``), metrics streams end,
then the gateway closes and the recorder writes its last batch.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import uvicorn

from axtui import locations
from axtui.config import Settings
from axtui.server.app import ENV_NO_AUTH, create_app
from axtui.server.metrics_api import ENV_WORKERS

__all__ = ["serve", "uvicorn_config"]

log = logging.getLogger(__name__)


def uvicorn_config(
    app: Any, settings: Settings, *, host: str, port: int, workers: int = 1, log_level: str = "info", **extra: Any
) -> uvicorn.Config:
    """The uvicorn config ax serves with (uvloop, httptools, no access log unless asked)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=settings.server.access_log,
        timeout_graceful_shutdown=max(1, int(settings.server.drain_timeout_s)),
        # Keep-alive for load balancers and SDK connection pools.
        timeout_keep_alive=30,
        server_header=False,
        # ax reads no client addresses; skipping the X-Forwarded-* rewrite saves work on every request.
        proxy_headers=False,
        log_level=log_level,
        **extra,
    )


def serve(settings: Settings, *, host: str, port: int, workers: int = 1, no_auth: bool = False) -> None:
    """Serve until stopped by a signal.

    Args:
        settings: the settings (with several workers, each reads the config file again).
        host: interface to bind (127.0.0.1 unless told otherwise).
        port: TCP port.
        workers: worker processes.
        no_auth: serve without gateway keys.
    """
    if workers > 1:
        # Worker processes import the app themselves; they learn --no-auth from the environment.
        os.environ[ENV_NO_AUTH] = "1" if no_auth else "0"
        # Several workers read live metrics from the store, where every worker writes them.
        os.environ[ENV_WORKERS] = str(workers)
        config = uvicorn_config("axtui.server.app:app_from_env", settings, host=host, port=port, workers=workers,
                                factory=True)
        sock = config.bind_socket()
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
        return
    app = create_app(settings, no_auth=no_auth, watch=locations.config_path())
    server = uvicorn.Server(uvicorn_config(app, settings, host=host, port=port))
    # uvicorn stops gracefully on SIGINT/SIGTERM and then raises the signal
    # again for the handler it found; ours turns that into a clean return,
    # so a stop after a graceful shutdown exits 0.
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        server.run()
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Stopped(Exception):
    """SIGTERM arrived after the server had stopped gracefully."""


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped
