"""Times people type: ``1h``, ``7d``, ``2026-11-01``, ``2026-11-01T09:30Z``, ``@1767225600``.

A relative time counts back from now; a date is its UTC midnight; a date
and time without an offset is UTC. Pure: ``now`` is passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from axtui.errors import InvalidRequest
from axtui.metrics.alerts.grammar import parse_duration

__all__ = ["iso_utc", "parse_time"]


def parse_time(text: str, now: float, *, option: str = "time") -> float:
    """Epoch seconds for ``text``.

    Accepts ``now``, a relative time (``90s``, ``15m``, ``1h``, ``7d``,
    ``2w``, ``1h30m``: that long before ``now``), an ISO date
    (``2026-11-01``: its UTC midnight), an ISO date and time
    (``2026-11-01T09:30``, ``2026-11-01 09:30:00+02:00``; UTC without an
    offset), or epoch seconds after ``@`` (``@1767225600``).

    Raises:
        InvalidRequest: anything else; the message shows the accepted forms.
    """
    t = text.strip()
    if t.lower() == "now":
        return now
    if t.startswith("@"):
        try:
            return float(t[1:])
        except ValueError:
            pass
    try:
        return now - parse_duration(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00") if t.endswith(("Z", "z")) else t)
    except ValueError:
        raise InvalidRequest(
            f"{option} {text!r} is not a time; use a relative time like 1h or 7d, a date like 2026-11-01, "
            "or a date and time like 2026-11-01T09:30Z",
            param=option,
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def iso_utc(ts: float) -> str:
    """``ts`` as UTC ISO-8601 with microseconds and a ``Z``: ``2026-11-01T09:30:00.123456Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
