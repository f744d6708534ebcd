"""Running the gateway server: uvicorn with uvloop and httptools.

One worker runs in this process; ``workers > 1`` starts that many
processes on one socket (uvicorn's supervisor), each building its own app
and gateway on the same store, so whatever must agree across them
(limits, budgets, cache, records) lives in the store or in Redis.

A graceful stop (SIGINT, SIGTERM): the listening socket closes, the calls
in flight finish (up to ``server.drain_timeout_s``), metrics streams end,
then the gateway closes and the recorder writes its last batch.

Settings of the whole process (the thread switch interval, the garbage
collector) are made here, by the serving entry point, never by the
library modules a program may embed.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from typing import Any

import uvicorn

from axtui import locations
from axtui.config import Settings
from axtui.server.app import ENV_NO_AUTH, create_app
from axtui.server.monitoring import ENV_WORKERS

__all__ = ["ENV_HOST", "serve", "tune_process", "tune_started", "uvicorn_config"]

log = logging.getLogger(__name__)

#: Set by ``ax serve --workers N`` for its worker processes: the address listened on.
ENV_HOST = "AX_SERVE_HOST"
#: The longest a thread keeps the GIL before another may have it.
SWITCH_INTERVAL_S = 0.001


def tune_process() -> None:
    """Before serving: let the event loop have the GIL back within 1 ms.

    The recorder's writer thread holds the GIL while it converts a batch;
    by default Python lets a thread keep it 5 ms before the event loop may
    have it back. 1 ms keeps the loop's longest stall under the 5 ms target.
    """
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)


def tune_started() -> None:
    """Once the gateway is built: keep what start-up made out of the cyclic collector.

    What start-up made lives until the end; the collector's full passes over
    it would stall every call for tens of ms. The cache keeps objects from
    every miss: with the default thresholds (a young pass every 700 new
    objects) the collector took a third of a miss's CPU; a pass every 20,000
    takes a few percent, in pauses of about 5 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 5, 10)


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
        os.environ[ENV_HOST] = host
        config = uvicorn_config("axtui.server.app:app_from_env", settings, host=host, port=port, workers=workers,
                                factory=True)
        sock = config.bind_socket()
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
        return
    tune_process()
    app = create_app(settings, no_auth=no_auth, watch=locations.config_path(), host=host, on_started=tune_started)
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
