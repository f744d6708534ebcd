"""Times people type: ``1h``, ``7d``, ``today``, ``2026-11-01``, ``2026-11-01T09:30Z``, ``@1767225600``.

A relative time counts back from now; a date (and ``today``,
``yesterday``) is its UTC midnight; a date and time without an offset is
UTC. Nothing was recorded before 1970, so earlier times read as 1970-01-01;
and no date after the year 9999 can be shown, so later times read as
`LATEST`, the end of it (in any time zone).
Pure: ``now`` is passed in.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from axtui.errors import InvalidRequest
from axtui.metrics.alerts.grammar import parse_duration

__all__ = ["LATEST", "TIME_FORMS", "iso_utc", "parse_time"]

#: The latest time a date shows in every time zone: 9999-12-30 UTC (a day short of the last one `datetime`
#: knows, so that the zones east of UTC, up to 14 hours, stay within the year 9999).
LATEST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


def parse_time(text: str, now: float, *, option: str = "time") -> float:
    """Epoch seconds for ``text``.

    Accepts ``now``, ``today`` and ``yesterday`` (UTC midnights), a
    relative time (``90s``, ``15m``, ``1h``, ``7d``, ``2w``, ``1h30m``:
    that long before ``now``), an ISO date (``2026-11-01``: its UTC
    midnight), an ISO date and time (``2026-11-01T09:30``,
    ``2026-11-01 09:30:00+02:00``; UTC without an offset), or epoch seconds
    after ``@`` (``@1767225600``).

    Raises:
        InvalidRequest: anything else; the message shows the accepted forms.
    """
    return min(LATEST, max(0.0, _parse(text, now, option)))


def _parse(text: str, now: float, option: str) -> float:
    t = text.strip()
    word = t.lower()
    if word == "now":
        return now
    if word in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - timedelta(days=1 if word == "yesterday" else 0)).timestamp()
    if t.startswith("@"):
        try:
            epoch = float(t[1:])
        except ValueError:
            epoch = math.nan
        if math.isfinite(epoch):
            return epoch
    else:
        try:
            return now - parse_duration(t)
        except (ValueError, OverflowError):
            pass
        try:
            dt = datetime.fromisoformat(t.replace("Z", "+00:00") if t.endswith(("Z", "z")) else t)
        except ValueError:
            pass
        else:
            return (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).timestamp()
    raise InvalidRequest(f"{option} {text!r} is not a time; {TIME_FORMS}", param=option)


#: The forms every --since/--until takes, for messages.
TIME_FORMS = (
    "use now, today, yesterday, a time ago like 90s, 30m, 1h30m, 7d or 2w, a date like 2026-11-01, "
    "a date and time like 2026-11-01T09:30Z, or epoch seconds like @1767225600"
)


def iso_utc(ts: float) -> str:
    """``ts`` as UTC ISO-8601 with microseconds and a ``Z``: ``2026-11-01T09:30:00.123456Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
