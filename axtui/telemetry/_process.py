"""The gateway's side of the span export process: queue, hand over in batches, count.

Building spans and the SDK's protobuf encoding cost far more than taking a
call's ids and timings; in the gateway process they would compete with the
event loop for the interpreter. So each gateway process (each ``ax serve``
worker) starts one child, ``python -m axtui.telemetry._child``, which does
both and exports with the SDK's OTLP exporter.

Here, the event loop only appends a finished trace (a tuple of primitives)
to a bounded deque. A writer thread wakes every ``delay_s`` (sooner when
traces pile up) and writes them to the child's stdin as one `marshal` frame;
a reader thread takes the child's counts and log lines from its stdout.

Counts: exported and failed are the child's; dropped is every span that
never reached the collector otherwise: the queue was full, the child had
died with spans it had not reported on, or stopping took too long. A child
that dies after starting is replaced (its unreported spans counted as
dropped, logged once); one that cannot start makes telemetry stop for this
process, logged once, and from then on every span is dropped and counted.

A graceful stop sends what is queued, closes the child's stdin, and waits
(at most ``timeout_s``) for the child to export it and exit; a child still
running then is killed. The child ignores SIGINT and SIGTERM: its life
follows its stdin, so a Ctrl-C or a stop of the service reaches the gateway,
which drains it.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import axtui
from axtui import redaction
from axtui.telemetry._wire import read_frame, write_frame

__all__ = ["COMMAND", "SpanExportProcess"]

log = logging.getLogger("axtui.telemetry")

Trace = tuple[Any, ...]

#: The export process's command line (its interpreter is this one).
COMMAND = [sys.executable, "-m", "axtui.telemetry._child"]


def _span_count(trace: Trace) -> int:
    return 1 + len(trace[9]) + len(trace[10])


class _Child:
    """One span export process and what it has been sent and has reported."""

    def __init__(self, config: dict[str, Any]) -> None:
        env = dict(os.environ)
        home = Path(axtui.__file__).resolve().parent.parent
        if home.name not in ("site-packages", "dist-packages"):
            # A source checkout: the child imports the same axtui as this process, not an installed one.
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(home), env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=env, close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        self.sent = 0
        self.exported = 0
        self.failed = 0
        self.ready = False
        self.gone = False
        self.error = ""
        self.secrets: frozenset[str] | None = None
        self.reader: threading.Thread | None = None
        try:
            write_frame(self.stdin.fileno(), ("config", config))
        except OSError:  # it exited at once; reap it rather than leave a zombie
            self.proc.kill()
            self.proc.wait()
            self.stdin.close()
            self.stdout.close()
            raise


def _close(child: _Child | None) -> None:
    if child is not None:
        with contextlib.suppress(OSError):
            child.stdin.close()


class SpanExportProcess:
    """Queue finished traces; a child process builds, encodes and exports their spans.

    Args:
        config: what the child needs: ``endpoint``, ``service_name``, ``kinds``, ``capture_content``,
            ``timeout_s``.
        max_queue: traces (calls) waiting in this process at most; later ones are dropped and counted.
        batch: traces per frame to the child, at most.
        delay_s: how long the writer waits for a batch to fill.
    """

    def __init__(self, config: dict[str, Any], *, max_queue: int = 8192, batch: int = 1024,
                 delay_s: float = 0.5) -> None:
        self._config = config
        self._queue: collections.deque[Trace] = collections.deque()
        self._max_queue = max_queue
        self._batch = batch
        self._wake_at = max(1, min(batch, 128))
        self._delay_s = delay_s
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._stopping = False
        self._broken = False
        self._dropped = 0
        # What children that are gone exported and failed.
        self._exported = 0
        self._failed = 0
        self._child = self._start()
        self._writer = threading.Thread(target=self._write, name="ax-otlp-handover", daemon=True)
        self._writer.start()

    @property
    def pid(self) -> int | None:
        """The current export process's id (None when telemetry stopped)."""
        child = self._child
        return None if child is None or child.gone else child.proc.pid

    def submit(self, trace: Trace) -> None:
        """Queue a finished trace: O(1) on the caller's thread."""
        queue = self._queue
        if len(queue) >= self._max_queue or self._stopping:
            with self._lock:
                self._dropped += _span_count(trace)
            return
        queue.append(trace)
        if len(queue) == self._wake_at:
            self._wake.set()

    def stats(self) -> dict[str, int]:
        """Spans exported, dropped and failed, over every child so far."""
        with self._lock:
            exported, failed = self._exported, self._failed
            child = self._child
            if child is not None and not child.gone:
                exported += child.exported
                failed += child.failed
            return {"exported": exported, "dropped": self._dropped, "failed": failed}

    # -- the child --------------------------------------------------------------------------------

    def _start(self) -> _Child | None:
        try:
            child = _Child(self._config)
        except OSError as exc:
            self._broke(f"it could not be started ({exc})")
            return None
        child.reader = threading.Thread(target=self._read, args=(child,), name="ax-otlp-counts", daemon=True)
        child.reader.start()
        return child

    def _broke(self, why: str) -> None:
        self._broken = True
        log.error("telemetry: the span export process stopped: %s; spans are dropped and counted "
                  "(ax_telemetry_spans_total{outcome=\"dropped\"}) until ax restarts", why)

    def _read(self, child: _Child) -> None:
        """Take the child's reports until it exits; then account for it and, if it died, replace it."""
        try:
            while (message := read_frame(child.stdout)) is not None:
                kind = message[0]
                if kind == "counts":
                    with self._lock:
                        child.exported, child.failed = message[1], message[2]
                elif kind == "log":
                    log.warning("%s", message[1])
                elif kind == "ready":
                    child.ready = True
                elif kind == "error":
                    child.error = message[1]
        except (OSError, ValueError, EOFError, TypeError, IndexError):
            pass  # a child killed mid-frame; what it did not report is counted below
        code = child.proc.wait()
        child.stdout.close()
        with self._lock:
            child.gone = True
            self._exported += child.exported
            self._failed += child.failed
            lost = max(0, child.sent - child.exported - child.failed)
            self._dropped += lost
        if self._stopping:
            return
        if not child.ready:
            self._broke(child.error or f"it exited with code {code} before it was ready")
            return
        log.warning("telemetry: the span export process (pid %d) exited with code %d; %d spans were lost "
                    "(counted as dropped); starting a new one", child.proc.pid, code, lost)
        with self._lock:  # shutdown sets _stopping under this lock, so it sees the new child or none
            self._child = None if self._stopping else self._start()
        self._wake.set()

    # -- the writer thread ------------------------------------------------------------------------

    def _write(self) -> None:
        handed: _Child | None = None  # only this thread writes to (and closes) a child's stdin
        while True:
            self._wake.wait(self._delay_s)
            self._wake.clear()
            while self._queue:
                batch: list[Trace] = []
                queue, size = self._queue, self._batch
                while queue and len(batch) < size:
                    batch.append(queue.popleft())
                child = self._child
                if child is not handed:
                    _close(handed)
                    handed = child
                self._hand_over(child, batch)
            if self._stopping and not self._queue:
                break
        _close(handed)
        _close(self._child)  # the child exports what it has and exits

    def _hand_over(self, child: _Child | None, batch: list[Trace]) -> None:
        spans = sum(map(_span_count, batch))
        if child is None or child.gone or self._broken:
            with self._lock:
                self._dropped += spans
            return
        try:
            fd = child.stdin.fileno()
            known = redaction.remembered()
            if known is not child.secrets:
                write_frame(fd, ("secrets", tuple(known)))
                child.secrets = known
            write_frame(fd, ("traces", batch))
        except (OSError, ValueError):  # the child is gone (its reader thread is replacing it)
            with self._lock:
                self._dropped += spans
            return
        with self._lock:
            if child.gone:  # it died after reading them, before its reader counted what it had been sent
                self._dropped += spans
            else:
                child.sent += spans

    # -- stopping -------------------------------------------------------------------------------------

    def shutdown(self, timeout_s: float) -> None:
        """Stop taking traces, let the child export what is queued (waiting at most ``timeout_s``), end it."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._writer.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            child = self._child
        if child is not None and child.reader is not None:
            child.reader.join(max(0.0, deadline - time.monotonic()))
            if child.reader.is_alive():
                child.proc.kill()  # the collector is slow or gone: what it still holds is dropped
                child.reader.join(5.0)
        self._writer.join(5.0)
        with self._lock:
            while self._queue:
                self._dropped += _span_count(self._queue.popleft())
