"""`AnswerCache`: the engine's response cache (exact, then semantic), in two tiers.

Lookup, in order, within the caller's scope:

1. the memory tier by exact key (no I/O: this is the sub-millisecond hit);
2. the store tier by exact key, read off the event loop;
3. when the policy allows semantic matching: the turns are embedded, the
   index (an HNSW graph, `axtui.cache.index`) proposes entries of the same
   partition (model, parameters, scope, conversation shape), each checked
   exactly: every turn at least ``threshold`` similar, and the guards reject
   those that differ in numbers, negation or names.

Storing never waits: the memory tier takes the entry at once (so the next
identical request hits), the guard features and vectors are computed,
indexed, and the row is queued for the store's writer thread.

With the built-in embedder (the default) all of the semantic work (guard
features, embedding, the graph's search and adds) runs in a process of its
own beside the gateway's (`axtui.cache.worker`): the event loop sends a
lookup and takes the answer back, about 0.03 ms of its time, and the
worker uses another core. In the gateway's process, on the loop, the same
work cost about 0.6 ms a miss (more than the rest of a call), which capped
one worker near 550 requests/s (bench_gateway.py). A worker that does not
answer in time costs a lookup, never a call; one that dies is replaced and
reloaded from the snapshot and the store.

With another embedder (a paid one, called through the gateway), the index
lives in this process: adding to the graph (~0.2-0.4 ms of CPU a vector at
100k rows) is left to the `Indexer`'s thread, in batches. A search (~0.05
ms at a few thousand rows, ~0.2 ms at 100k, ~0.35 ms at 1M: bench_cache.py)
runs on the loop while the index is small and free, and on a search thread
when it is large (usearch searches without the interpreter's lock, beside
the loop) or busy, so the loop never waits for the index's lock.

A cache may lose a write, never hold up a call: a store whose background
work is full (`_MAX_PENDING` stores waiting for an embedder or the indexer,
or the store tier's ``write_queue``) is dropped and counted in
``dropped_writes``. The entry is still served from memory; an entry not
indexed here is indexed later from the store, as other processes' entries
are.

The guards' features are remembered by text (a pure function of it), and
so are the embedders' vectors: a lookup leaves nothing behind for the
store that may follow, which works its request out again (cache key,
partition, guards) without embedding it twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
from cachetools import LRUCache

from axtui.aio import start_eagerly
from axtui.cache.entry import CorruptEntry, Entry, copy_response, decode_guards, decode_response
from axtui.cache.guards import GuardFeatures, exact_signature, features, features_of, turns_mismatch
from axtui.cache.index import VectorIndex, snapshot_path
from axtui.cache.indexer import Indexer
from axtui.cache.keys import RequestKeys, request_keys, scope_for, turn_texts
from axtui.cache.memory import MemoryTier
from axtui.cache.persist import StoredRow, StoreTier, cache_marker
from axtui.cache.policy import EffectivePolicy, PolicyBook
from axtui.cache.semantic import BuiltinEmbedder, Embedder
from axtui.cache.worker import SemanticWorker, Stored
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import CacheConfig
from axtui.errors import AxError, StoreError
from axtui.ports import CacheDirective, CacheHit
from axtui.store import Store
from axtui.types import Caller, ChatRequest, ChatResponse, assemble_tool_calls

__all__ = ["AnswerCache", "LiveCounters"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Texts longer than this are embedded and guarded on a worker thread, not the event loop.
_INLINE_CHARS = 4_000
#: Graphs smaller than this are searched on the event loop (~0.05-0.1 ms); a larger one's search
#: (0.15-0.3 ms) goes to the search thread, where usearch runs beside the loop without the GIL,
#: for ~0.03 ms of the loop's time to hand it over and take the answer back.
_INLINE_SEARCH_ROWS = 5_000
#: Stores whose background part may wait at once (embedding; indexing); more are dropped and counted.
_MAX_PENDING = 1_024
#: Conversations longer than this (characters, every turn) are matched exactly only: a paraphrase of
#: a document is not a cache hit worth its guards and vectors, and their work must fit a worker's message.
SEMANTIC_MAX_CHARS = 100_000

#: The keys a miss worked out, for the store that follows it in the same task: the engine hands a
#: call's lookup and its store the same request object and changes nothing in it between them.
#: Every lookup starts afresh and a store takes them at most once, as a caller may send the same
#: object again, changed.
_LOOKED_UP: ContextVar[tuple[ChatRequest, str, RequestKeys] | None] = ContextVar("ax_cache_looked_up", default=None)


@dataclass(slots=True)
class LiveCounters:
    """What this process's cache did since it started (the store's totals are in `stats`)."""

    exact_hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    stored: int = 0
    guard_blocks: int = 0
    corrupt: int = 0
    embed_errors: int = 0
    store_errors: int = 0
    saved_nanos: int = 0
    #: Stores whose background work was dropped because its queue was full.
    dropped_writes: int = 0


class AnswerCache:
    """The response cache (implements `axtui.ports.ResponseCache`).

    Args:
        config: the ``[cache]`` settings.
        store: the store for the persistent tier; None keeps entries in memory only.
        clock: for TTLs and hit times.
        embedder: turns texts into vectors for semantic lookup; None: exact only.
        start_writer: start the store tier's writer thread now (tests may defer it).
        behind: the models an alias or a deployment stands for (their policies apply to it).
    """

    def __init__(
        self,
        config: CacheConfig,
        store: Store | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        embedder: Embedder | None = None,
        start_writer: bool = True,
        behind: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.embedder = embedder
        self.policies = PolicyBook(config, behind)
        self.memory = MemoryTier(config.memory_entries, config.memory_bytes)
        self.snapshot_path = snapshot_path(store, embedder.name) if store and embedder else None
        #: With the built-in embedder, the index and a lookup's CPU work live in a process of their own;
        #: with another, the index lives here (`local`) and the `Indexer` keeps it.
        self.worker: SemanticWorker | None = None
        self.local: VectorIndex | None = None
        self.index: VectorIndex | SemanticWorker
        self.indexer: Indexer | SemanticWorker
        if isinstance(embedder, BuiltinEmbedder) and config.semantic_process:
            self.worker = self.index = self.indexer = SemanticWorker(
                config.index_entries, embedder.dim, self.snapshot_path, self.memory.pop_many
            )
        else:
            self.local = self.index = VectorIndex(capacity=config.index_entries)
            self.indexer = Indexer(self.local, self.memory, self.snapshot_path, _MAX_PENDING)
        self.counters = LiveCounters()
        #: Guard features by text (a pure function of it), used on the event loop only.
        self._guard_memo: LRUCache[str, GuardFeatures] = LRUCache(maxsize=4096)
        #: A miss's lookup work, by cache key, until its answer is kept (event loop only).
        self._kept: LRUCache[str, Stored] = LRUCache(maxsize=_MAX_PENDING * 4)
        self._tasks: set[asyncio.Task[None]] = set()
        #: Where a search goes when the loop finds the index busy.
        self._index_thread = ThreadPoolExecutor(1, thread_name_prefix="ax-cache-search")
        self.tier: StoreTier | None = None
        #: Moved by ``ax cache clear`` and ``invalidate``; its version when this cache last followed it.
        self._marker = cache_marker(store) if store is not None else None
        self._marker_seen = self._marker.version() if self._marker is not None else None
        if store is not None:
            self.tier = StoreTier(
                store,
                clock=clock,
                max_bytes=config.store_bytes,
                max_queue=config.write_queue,
                embedder=embedder.name if embedder is not None else None,
                on_removed=self._forget,
                on_reset=self._reset,
                on_index_rows=self.indexer.index_rows,
                on_live_keys=self.indexer.keep_only,
                on_start=self.indexer.load_snapshot,
                on_idle=self._idle,
                on_close=self.indexer.save_snapshot,
                indexed=self.index.__contains__,
                autostart=start_writer,
            )

    # -- the port ----------------------------------------------------------------------------

    async def lookup(self, request: ChatRequest, caller: Caller, directive: CacheDirective) -> CacheHit | None:
        """A stored answer for this request in the caller's scope, exact first, then semantic.

        Never raises: a cache that fails costs a hit, never an answer (the failure is logged).
        """
        try:
            return await self._lookup(request, caller, directive)
        except Exception:
            log.exception("response cache: lookup failed; answering without the cache")
            return None

    async def store(
        self,
        request: ChatRequest,
        caller: Caller,
        response: ChatResponse,
        cost_nanos: int | None,
        directive: CacheDirective,
    ) -> None:
        """Keep a complete answer; returns at once, the slow parts run in the background.

        Never raises: the answer was already served (the failure is logged).
        """
        try:
            self._store(request, caller, response, cost_nanos, directive)
        except Exception:
            log.exception("response cache: keeping an answer failed")

    async def _lookup(self, request: ChatRequest, caller: Caller, directive: CacheDirective) -> CacheHit | None:
        _LOOKED_UP.set(None)
        policy = self.policies.for_model(request.model)
        if not policy.reads(request, directive):
            return None
        if self._marker is not None and (mark := self._marker.version()) != self._marker_seen:
            self._follow_invalidation(mark)
        scope = scope_for(policy.scope, caller)
        keys = request_keys(request, scope)
        now = self.clock.now()
        min_created = now - directive.ttl_s if directive.ttl_s else 0.0
        entry = await self._fetch(keys.key, now)
        if entry is not None and entry.alive(now, min_created):
            return self._hit(entry, "exact", None, now)
        if self._semantic(policy, request):
            hit = await self._semantic_lookup(request, scope, keys, caller, policy, now, min_created)
            if hit is not None:
                return hit
        self.counters.misses += 1
        _LOOKED_UP.set((request, scope, keys))
        return None

    def _store(
        self,
        request: ChatRequest,
        caller: Caller,
        response: ChatResponse,
        cost_nanos: int | None,
        directive: CacheDirective,
    ) -> None:
        looked = _LOOKED_UP.get()
        _LOOKED_UP.set(None)
        policy = self.policies.for_model(request.model)
        if not policy.writes(request, directive) or not (response.content or response.tool_calls):
            return
        scope = scope_for(policy.scope, caller)
        if looked is not None and looked[0] is request and looked[1] == scope:
            keys = looked[2]
        else:
            keys = request_keys(request, scope)
        now = self.clock.now()
        ttl = policy.ttl_for(directive)
        texts = turn_texts(request) if self._semantic(policy, request) else []
        semantic = bool(texts) and sum(map(len, texts)) <= SEMANTIC_MAX_CHARS
        entry = Entry(
            key=keys.key,
            # A semantic entry's partition needs its guards: it is set with them, below.
            partition="" if semantic else keys.partition(),
            scope=scope,
            user=caller.user,
            model=request.model,
            response=_assembled(copy_response(response)),
            cost_nanos=cost_nanos,
            created_at=now,
            expires_at=now + ttl if ttl > 0 else 0.0,
        )
        entry.response.id = ""
        self.memory.put(entry)
        self.counters.stored += 1
        if len(self._tasks) >= _MAX_PENDING:
            # Embedders are behind: the entry is served from this process's memory only.
            self.counters.dropped_writes += 1
            return
        task = start_eagerly(self._finish_store(entry, request, keys, caller, semantic, texts))
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- admin -------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every answer stored so far is indexed and written."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.indexer.behind:
            await asyncio.to_thread(self.indexer.wait)
        if self.worker is not None:
            self.worker.read_replies()  # what the index let go while adding, said before the wait's answer
        if self.tier is not None:
            await asyncio.to_thread(self.tier.flush)

    async def aclose(self) -> None:
        """Finish background work and stop the writer thread (the gateway calls this on close)."""
        await self.drain()
        if self.worker is None:
            await asyncio.to_thread(self.indexer.close)
        if self.tier is not None:
            await asyncio.to_thread(self.tier.close)  # saves the index's snapshot
        if self.worker is not None:
            self.worker.unlisten()
            await asyncio.to_thread(self.worker.close)
        self._index_thread.shutdown(wait=True)

    def forget_local(self) -> None:
        """Drop what this process holds in memory (after an invalidation in the store)."""
        self._reset()

    def snapshot(self) -> dict[str, Any]:
        """Live figures of this process: counters, memory tier and index sizes."""
        out = asdict(self.counters)
        out["dropped_writes"] += self.tier.dropped if self.tier is not None else 0
        out.update(
            memory_entries=len(self.memory),
            memory_bytes=self.memory.bytes,
            memory_evictions=self.memory.evictions,
            index_entries=len(self.index),
            index_capacity=self.index.capacity,
            index_bytes=self.index.nbytes(),
            index_bytes_per_entry=self.index.bytes_per_entry(),
            index_evictions=self.index.evictions,
        )
        if self.worker is not None:
            # Lookups it did not answer in time (misses) and workers started in place of one that ended.
            out.update(worker_unanswered=self.worker.dropped, worker_restarts=self.worker.restarts)
        return out

    # -- steps -------------------------------------------------------------------------------

    def _semantic(self, policy: EffectivePolicy, request: ChatRequest) -> bool:
        return (
            policy.semantic
            and self.embedder is not None
            and len(request.messages) <= self.config.semantic_max_turns
        )

    def _hit(self, entry: Entry, kind: str, similarity: float | None, now: float) -> CacheHit:
        if kind == "exact":
            self.counters.exact_hits += 1
        else:
            self.counters.semantic_hits += 1
        self.counters.saved_nanos += entry.cost_nanos or 0
        if kind == "semantic" or entry.key in self.index:
            self.index.touch(entry.key)
        if self.tier is not None:
            self.tier.touch(entry.key, now)
        return CacheHit(copy_response(entry.response), kind, similarity, entry.cost_nanos)  # type: ignore[arg-type]

    async def _fetch(self, key: str, now: float) -> Entry | None:
        """The entry by key: memory first, then the store (off the loop). Expired ones are removed."""
        entry = self.memory.get(key)
        if entry is None and self.tier is not None:
            try:
                # A SQLite file is read in place (microseconds, never waiting for writers).
                row = self.tier.get(key) if self.tier.reader is not None else await asyncio.to_thread(self.tier.get, key)
            except StoreError as exc:
                self.counters.store_errors += 1
                log.warning("response cache: %s; answering without the cache", exc.message)
                return None
            if row is None:
                return None
            try:
                entry = _entry_from_row(row)
            except CorruptEntry as exc:
                self.counters.corrupt += 1
                log.warning("response cache: entry %s is corrupt and was removed (%s)", key[:12], exc)
                self.tier.delete([key], "corrupt")
                self.index.discard(key)
                return None
            if entry.alive(now):
                self.memory.put(entry)
        if entry is not None and not entry.alive(now):
            self.memory.pop(key)
            self.index.discard(key)
            if self.tier is not None:
                self.tier.delete([key], "expirations")
            return None
        return entry

    async def _semantic_lookup(
        self, request: ChatRequest, scope: str, keys: RequestKeys, caller: Caller, policy: EffectivePolicy,
        now: float, min_created: float,
    ) -> CacheHit | None:
        texts = turn_texts(request)
        if sum(map(len, texts)) > SEMANTIC_MAX_CHARS:
            return None
        key = keys.key
        if self.worker is not None:
            looked = await self.worker.lookup(keys.prefix, texts, policy.threshold, now=now, min_created=min_created)
            if looked is None:
                return None
            partition, guards, candidates, kept = looked.partition, looked.guards, looked.candidates, looked.kept
        else:
            guards = await self._guards(texts)
            partition = keys.partition(exact_signature(guards))
            candidates = await self._search_here(partition, texts, caller, policy, now, min_created)
            kept = None
        for cand_key, min_turn in candidates:
            if min_turn < policy.threshold or cand_key == key:
                continue
            entry = await self._fetch(cand_key, now)
            if entry is None:
                self.index.discard(cand_key)
                continue
            # The index only holds this partition's rows; checking again costs
            # nothing and makes a leak across scopes impossible by construction.
            if entry.partition != partition or entry.scope != scope or not entry.alive(now, min_created):
                continue
            if entry.guards is None:
                continue
            if turns_mismatch(guards, entry.guards) is not None:
                self.counters.guard_blocks += 1
                continue
            return self._hit(entry, "semantic", round(min(min_turn, 1.0), 4), now)
        if kept is not None:
            self._kept[key] = kept  # for this miss's store: the worker need not work it out again
        return None

    async def _search_here(
        self, partition: str, texts: list[str], caller: Caller, policy: EffectivePolicy, now: float,
        min_created: float,
    ) -> list[tuple[str, float]]:
        """Candidates from this process's own index (an embedder other than the built-in one)."""
        index = self.local
        assert index is not None
        if not index.size(partition):
            # Nothing in the partition could pass the guards: no embedding,
            # no search (the answer, once stored, is embedded off the path).
            return []
        vectors = await self._embed(texts, caller)
        if vectors is None:
            return []
        found = None
        if len(index) < _INLINE_SEARCH_ROWS:
            found = index.try_search(partition, vectors, policy.threshold, now=now, min_created=min_created)
        if found is None:  # a large graph, or the indexer is adding: search on the search thread
            found = await asyncio.get_running_loop().run_in_executor(
                self._index_thread,
                lambda: index.search(partition, vectors, policy.threshold, now=now, min_created=min_created),
            )
        return [(c.key, c.min_turn) for c in found]

    async def _embed(self, texts: list[str], caller: Caller) -> np.ndarray | None:
        """Unit vectors of the turns, or None when a turn has no words or the embedder failed."""
        assert self.embedder is not None
        embedder = self.embedder
        vectors: np.ndarray
        try:
            if isinstance(embedder, BuiltinEmbedder):
                builtin = embedder
                vectors = await self._offload(lambda: builtin.embed_sync(texts), texts)
            else:
                vectors = await embedder.embed(texts, caller)
        except AxError as exc:
            self.counters.embed_errors += 1
            log.warning("response cache: embedding failed, semantic lookup skipped: %s", exc.message)
            return None
        # A turn without words (only filler, or only a tool call) cannot be
        # compared by meaning: such conversations are matched exactly only.
        if not all(float(row @ row) > 0.25 for row in vectors):
            return None
        return vectors

    async def _guards(self, texts: list[str]) -> tuple[GuardFeatures, ...]:
        """The turns' guard features; short texts' are remembered (a miss's store needs its lookup's again)."""
        if sum(len(t) for t in texts) > _INLINE_CHARS:
            return await asyncio.to_thread(lambda: tuple(features(t) for t in texts))
        return features_of(texts, self._guard_memo)

    async def _offload(self, work: Callable[[], T], texts: list[str]) -> T:
        if sum(len(t) for t in texts) <= _INLINE_CHARS:
            return work()
        return await asyncio.to_thread(work)

    async def _finish_store(
        self, entry: Entry, request: ChatRequest, keys: RequestKeys, caller: Caller, semantic: bool, texts: list[str]
    ) -> None:
        try:
            vectors: np.ndarray | None = None
            if semantic and self.worker is not None:
                stored = self._kept.pop(entry.key, None)
                if stored is None:
                    stored = await self.worker.store(keys.prefix, texts, entry.key, entry.created_at, entry.expires_at)
                elif stored.vectors is not None and not self.worker.add(stored, entry.key, entry.created_at,
                                                                        entry.expires_at):
                    # Not indexed here now: the store's refresh brings it into the index within seconds.
                    self.counters.dropped_writes += 1
                if stored is None:
                    # The worker did not answer: kept for exact matches only.
                    self.counters.dropped_writes += 1
                    entry.partition = keys.partition(exact_signature(await self._guards(texts)))
                else:
                    entry.partition, vectors = stored.partition, stored.vectors
                    if vectors is not None:
                        entry.guards = stored.guards
                        self.memory.put(entry)
            elif semantic:
                guards = await self._guards(texts)
                entry.partition = keys.partition(exact_signature(guards))
                vectors = await self._embed(texts, caller)
                if vectors is not None:
                    entry.guards = guards
                    self.memory.put(entry)
                    assert isinstance(self.indexer, Indexer)
                    if not self.indexer.add(entry, vectors):
                        # Not indexed now: the store's refresh indexes it within seconds.
                        self.counters.dropped_writes += 1
            if self.tier is not None:
                name = self.embedder.name if (vectors is not None and self.embedder is not None) else None
                self.tier.put(entry, vectors, name)
        except Exception:
            # A cache write that fails costs a future hit, never an answer: log it, keep serving.
            log.warning("response cache: storing entry %s failed", entry.key[:12], exc_info=True)

    # -- callbacks from the writer thread ------------------------------------------------------

    def _idle(self) -> None:
        worker = self.worker
        if worker is not None and worker.reload.is_set():
            # A new worker replaced one that stopped: it starts from the snapshot and the store.
            worker.reload.clear()
            worker.load_snapshot()
            if self.tier is not None:
                self.tier.load_index()
        self.indexer.maybe_snapshot()

    def _forget(self, keys: list[str]) -> None:
        self.memory.pop_many(keys)
        self.index.remove_many(keys)

    def _follow_invalidation(self, mark: tuple[int, int] | None) -> None:
        """Entries were invalidated on this machine: what memory holds goes before this lookup.

        A semantic candidate is then read from the store, where an invalidated
        entry no longer is; the writer thread reloads the index meanwhile.
        """
        self._marker_seen = mark
        self.memory.clear()
        assert self.tier is not None
        self.tier.recheck()

    def _reset(self) -> None:
        self.memory.clear()
        self.index.clear()


def _entry_from_row(row: StoredRow) -> Entry:
    return Entry(
        key=row.key,
        partition=row.partition,
        scope=row.scope,
        user=row.user,
        model=row.model,
        response=decode_response(row.body),
        cost_nanos=row.cost_nanos,
        created_at=row.created_at,
        expires_at=row.expires_at or 0.0,
        guards=decode_guards(row.guards),
    )


def _assembled(response: ChatResponse) -> ChatResponse:
    """A streamed answer's tool-call fragments joined into whole calls (by ``index``) before storing.

    A later plain hit must return OpenAI's complete ``tool_calls``, and a
    streamed hit replays them as one delta per call.
    """
    if response.tool_calls:
        response.tool_calls = assemble_tool_calls(response.tool_calls)
    return response
