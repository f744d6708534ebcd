"""``GET /api/export``: calls, costs, alerts or budgets as CSV, JSON or JSON lines, streamed.

The headless exporter (`axtui.metrics.export`) runs in a thread and
writes into a small queue of 64 KiB chunks that the response sends as they
come, so an export of millions of calls takes little memory, and a client
that goes away stops it. Exports name every user's calls: they take the
admin key.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import queue
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from axtui.metrics.export import ExportQuery, check, export
from axtui.server.deps import gateway_of, require_admin
from axtui.store import Store

__all__ = ["export_router"]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json", "jsonl": "application/x-ndjson"}


class _Stopped(Exception):
    """The client went away: the export ends."""


class _Chunks(io.TextIOBase):
    """A text stream that hands its output to a queue in chunks of about 64 KiB (blocking when it is full)."""

    def __init__(self, out: queue.Queue[bytes | BaseException | None], stop: threading.Event) -> None:
        self._out = out
        self._stop = stop
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        self._parts.append(text)
        self._size += len(text)
        if self._size >= _CHUNK:
            self.send()
        return len(text)

    def send(self) -> None:
        if self._parts:
            data = "".join(self._parts).encode()
            self._parts.clear()
            self._size = 0
            self.put(data)

    def put(self, item: bytes | BaseException | None) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                self._out.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


async def _stream(store: Store, fmt: str, query: ExportQuery) -> AsyncIterator[bytes]:
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)
    stop = threading.Event()
    out = _Chunks(chunks, stop)

    def work() -> None:
        try:
            export(store, out, fmt, query)  # type: ignore[arg-type]  # a TextIOBase that only writes
            out.send()
            out.put(None)
        except _Stopped:
            pass
        except BaseException as exc:  # reported to the response, which can only end early now
            with contextlib.suppress(_Stopped):
                out.put(exc)

    def next_chunk() -> bytes | BaseException | None:
        while True:
            try:
                return chunks.get(timeout=0.5)
            except queue.Empty:
                if stop.is_set():  # the response was closed: nothing more will come
                    return None

    threading.Thread(target=work, name="ax-export", daemon=True).start()
    try:
        while True:
            item = await asyncio.to_thread(next_chunk)
            if item is None:
                return
            if isinstance(item, BaseException):
                # The status line has gone out: all a stream can do is end short.
                log.error("export of %s failed part-way: %s", query.what, item)
                return
            yield item
    finally:
        stop.set()


def export_router() -> APIRouter:
    """The ``/api/export`` route."""
    router = APIRouter()

    @router.get(
        "/api/export", tags=["Export"], summary="Export calls, costs, alerts or budgets",
        dependencies=[Depends(require_admin)], response_class=StreamingResponse,
        responses={200: {"description": "The rows, streamed, in the format asked for",
                         "content": {m.split(";")[0]: {} for m in _MEDIA.values()}}},
    )
    async def export_rows(
        request: Request,
        what: Literal["calls", "costs", "alerts", "budgets"] = "calls",
        format: Literal["csv", "json", "jsonl"] = "csv",
        since: Annotated[str | None, Query(description="From: 1h, 7d, or a date")] = None,
        until: Annotated[str | None, Query(description="Until: 1h (ago), or a date")] = None,
        provider: Annotated[str | None, Query(max_length=128)] = None,
        user: Annotated[str | None, Query(max_length=256)] = None,
    ) -> StreamingResponse:
        """The same rows and columns as `ax monitor export`, streamed as they are read."""
        from axtui.metrics.timespec import parse_time

        gateway = gateway_of(request)
        assert gateway.store is not None
        now = gateway.clock.now()
        query = ExportQuery(
            what=what,
            since=parse_time(since, now, option="since") if since else None,
            until=parse_time(until, now, option="until") if until else None,
            provider=provider, user=user, now=now, tz=gateway.settings.budgets.timezone,
        )
        check(format, query)
        ext = "csv" if format == "csv" else format
        return StreamingResponse(
            _stream(gateway.store, format, query), media_type=_MEDIA[format],
            headers={"content-disposition": f'attachment; filename="ax-{what}.{ext}"'},
        )

    return router
