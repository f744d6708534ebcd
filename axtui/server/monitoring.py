"""Monitoring of a serving gateway: live metrics, alert evaluation, Prometheus.

The server starts it once its gateway is built (`start_monitoring`); the
gateway owns it from then on and stops it first when it closes, before
the store goes away (`axtui.metrics.attach_monitoring`).
"""

from __future__ import annotations

import fcntl
import os

from axtui import locations
from axtui.engine.gateway import Gateway
from axtui.metrics.monitoring import Monitoring

__all__ = ["ENV_WORKERS", "start_monitoring"]

#: Set by ``ax serve --workers N`` for its worker processes.
ENV_WORKERS = "AX_SERVE_WORKERS"
_ALERTS_LOCK = "serve-alerts.lock"
_lock_fd: int | None = None


def _alerts_leader() -> bool:
    """Whether this worker evaluates alert rules: the one holding the lock file does.

    Several workers evaluating the same rules would fire every alert once
    per worker; a lock on a file beside the database picks one.
    """
    global _lock_fd
    if _lock_fd is not None:
        return True
    path = locations.data_dir() / _ALERTS_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _lock_fd = fd
    return True


def start_monitoring(gateway: Gateway) -> Monitoring:
    """Attach live metrics, alerts and Prometheus to ``gateway`` (once the loop runs).

    With several workers (``AX_SERVE_WORKERS``) live numbers come from the
    store, where every worker writes them, and one worker evaluates alerts.
    """
    from axtui.metrics import attach_monitoring

    workers = int(os.environ.get(ENV_WORKERS, "1") or 1)
    if workers > 1:
        return attach_monitoring(gateway, source="store", alerts=_alerts_leader())
    return attach_monitoring(gateway)
