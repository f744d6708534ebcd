"""Change markers: files that tell the processes on this machine that something in the store changed.

A process keeps what it reads from the store for a few seconds instead of
asking for it on every call: the budgets in force (`budgets.refresh_s`),
the keys it verified (`server.key_cache_s`), the stored rate limits
(`[ratelimit] poll_s`), the cache entries it holds in memory (its poll of
the store's invalidations, once a second). So that a change still applies
at once, the code that makes it replaces its topic's marker file after the
change is committed, and a process looks at the marker (a ``stat``: two
microseconds, ten when the core's caches are cold) before it trusts what
it kept: when the marker moved, it reads again first. Processes on other
machines cannot see the file; they read again within their interval, as
before.

The marker lives beside a SQLite file (every process using the file sees
it), and in the data directory for a server database, named after the
database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from typing import TYPE_CHECKING

from axtui.locations import data_dir, private_dir

if TYPE_CHECKING:
    from axtui.store import Store

__all__ = ["ChangeMarker"]

log = logging.getLogger(__name__)


class ChangeMarker:
    """The marker of one topic (``budgets``, ``keys``, ``limits``, ``cache``) of one store.

    Args:
        store: the store whose changes it marks.
        topic: what changed; each topic has a file of its own.
        applies: what a change is seen within elsewhere (for the warning when the file cannot be written).
    """

    def __init__(self, store: Store, topic: str, applies: str) -> None:
        if store.path is not None:
            self.path = store.path.with_name(f"{store.path.name}.{topic}")
        else:
            name = store.engine.url.render_as_string(hide_password=True)
            self.path = data_dir() / f"{topic}-{hashlib.sha256(name.encode()).hexdigest()[:16]}.changed"
        self.topic = topic
        self.applies = applies

    def version(self) -> tuple[int, int] | None:
        """Which version of the marker is there now (None: none was made yet)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def moved(self) -> None:
        """Say that the topic changed (after the change is committed); never raises."""
        try:
            private_dir(self.path.parent)
            # A new file put in place of the old one: its inode differs from the one it replaces.
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("%s: could not mark the change at %s (%s); running gateways apply it within %s",
                        self.topic, self.path, exc.strerror or exc, self.applies)
