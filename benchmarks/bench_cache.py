"""The response cache, measured: what it saves, how fast it answers, what it costs in memory.

1. The standard workload (`axtui.providers.sim.workload`: Zipf-repeated
   questions, near-duplicates, near-misses, unique and long prompts, some
   streamed) through a gateway on the instant simulated fleet, once with
   the cache off (the baseline) and once on: upstream calls cut, hit rate,
   and false semantic hits (a hit whose answer was produced for another
   question, model, limit or user).
2. Zero false hits on the near-miss pairs: every "different" pair of
   tests/cache/pairs.jsonl and the workload's near-misses, each stored
   then asked in a fresh global-scope cache at the default threshold.
3. An exact hit served by the engine, end to end (``Gateway.call``),
   beside an uncached call to the same instant upstream.
4. The semantic index alone (`axtui.cache.index`, HNSW) at 10k, 100k and
   1M entries of the built-in embedder (256 dimensions) in one partition
   (the worst case: one model, one scope), and at 100k entries in 1,000
   partitions: search latency beside the exact scan it replaced (same
   run), recall of the nearest entry and of every would-be hit against
   brute force, memory per entry. Prompts are `benchmarks/prompts.py`'s
   distinct everyday questions without digits.
5. Start-up with 100k entries stored: the index loaded from its snapshot,
   beside rebuilding it from the store.
6. A miss's whole lookup in the semantic worker (`axtui.cache._worker_child`:
   guards, embedding, search and exact check) at 10k entries in one
   partition, its CPU time run back to back, and with 2 ms between lookups
   (500 calls/s) spent asleep or busy with other work, as in a gateway.

Targets: upstream calls cut >= 30 %, hit rate >= 40 %, 0 false semantic
hits; exact hit p50 <= 1 ms; index search p99 <= 1 ms at 1M entries with
recall >= 99 %; start-up <= 2 s at 100k entries.

Run: ``python benchmarks/bench_cache.py [--quick]`` (--quick stops at 100k
entries and starts up with 20k; the 1M vectors are kept in the temp dir
after the first run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AX_HOME"] = tempfile.mkdtemp(prefix="ax-bench-cache-")
for _var in ("AX_CONFIG", "AX_DATABASE_URL"):
    os.environ.pop(_var, None)

from axtui.cache import AnswerCache, BuiltinEmbedder  # noqa: E402
from axtui.cache.entry import Entry  # noqa: E402
from axtui.cache.guards import exact_signature, features  # noqa: E402
from axtui.cache.index import VectorIndex  # noqa: E402
from axtui.cache.keys import partition_key, scope_for  # noqa: E402
from axtui.cache.text import words  # noqa: E402
from axtui.config import CacheConfig, ProviderConfig, Settings  # noqa: E402
from axtui.engine.compose import build_gateway  # noqa: E402
from axtui.engine.gateway import Gateway  # noqa: E402
from axtui.errors import AxError  # noqa: E402
from axtui.ports import CacheDirective  # noqa: E402
from axtui.providers.sim import fleet  # noqa: E402
from axtui.providers.sim.workload import NEAR_MISSES, Workload  # noqa: E402
from axtui.store import Store  # noqa: E402
from axtui.types import Caller, ChatRequest, ChatResponse, Usage  # noqa: E402
from benchmarks.prompts import prompt, prompts, vectors  # noqa: E402


def row(label: str, value: str, baseline: str = "", target: str = "", ok: bool | None = None) -> None:
    mark = "" if ok is None else ("  ok" if ok else "  MISSED")
    print(f"  {label:<44} {value:>14}   {baseline:<26} {target}{mark}")


def pct(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))]


def fast_settings(**cache: Any) -> Settings:
    providers = [ProviderConfig(name=p.name, kind="sim", profile="fast", region=p.region, models=p.model_names)
                 for p in fleet.demo_fleet()]
    return Settings.model_validate({
        "providers": [p.model_dump() for p in providers],
        "routing": {"aliases": fleet.demo_aliases()},
        "prices": {k: v.model_dump() for k, v in fleet.demo_price_overrides().items()},
        "cache": cache,
    })


# -- 1. the standard workload ------------------------------------------------------------------


async def run_workload(calls: int, *, cache_on: bool) -> dict[str, Any]:
    gw = await build_gateway(fast_settings(enabled=cache_on), record=False)
    # Answer text -> every (question, model, output limit, user) it was produced for upstream. The
    # simulated fleet answers the same question the same way for everyone, so a text may have several.
    origin: dict[str, set[tuple[str, str, Any, str]]] = {}
    upstream = hits = semantic = false_hits = errors = 0
    try:
        for item in Workload(seed=7).take(calls):
            caller = Caller(user=item.user)
            req = item.request
            try:
                if item.stream:
                    stream = gw.stream(req.model_copy(update={"stream": True}), caller)
                    content = "".join([c.delta async for c in stream])
                    rec = stream.record
                else:
                    result = await gw.call(req, caller)
                    content, rec = result.response.content, result.record
            except AxError:
                errors += 1
                continue
            asked = (" ".join(words(req.messages[-1].text())), req.model, req.output_limit, item.user)
            upstream += rec.attempts
            if rec.cache == "miss":
                origin.setdefault(content, set()).add(asked)
            else:
                hits += 1
                if rec.cache == "semantic":
                    semantic += 1
                    false_hits += asked not in origin.get(content, set())
            if cache_on and rec.cache == "miss":
                # Let the store finish in the background as it would between real calls.
                await asyncio.sleep(0)
        if cache_on:
            await gw.cache.drain()  # type: ignore[attr-defined]
    finally:
        await gw.aclose()
    return {"calls": calls, "upstream": upstream, "hits": hits, "semantic": semantic, "false_hits": false_hits,
            "errors": errors}


# -- 2. near-miss pairs --------------------------------------------------------------------------


async def near_miss_false_hits() -> tuple[int, int]:
    pairs: list[tuple[str, str]] = list(NEAR_MISSES)
    for line in (ROOT / "tests" / "cache" / "pairs.jsonl").read_text().splitlines():
        data = json.loads(line)
        if not data["same"]:
            pairs.append((data["a"], data["b"]))
    false = 0
    for a, b in pairs:
        cache = AnswerCache(CacheConfig(scope="global"), None, embedder=BuiltinEmbedder())
        ask = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": a}]})
        await cache.store(ask, Caller(), ChatResponse("answer to a", "m", Usage(1, 1)), 1, CacheDirective())
        await cache.drain()
        other = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": b}]})
        false += await cache.lookup(other, Caller(), CacheDirective()) is not None
    return false, len(pairs)


# -- 3. exact hit through the engine ----------------------------------------------------------


async def time_calls(gw: Gateway, req: ChatRequest, n: int) -> list[float]:
    caller = Caller(user="bench")
    for _ in range(200):
        await gw.call(req, caller)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await gw.call(req, caller)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def exact_hit_latency(n: int) -> tuple[list[float], list[float]]:
    req = ChatRequest.model_validate({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}]})
    on = await build_gateway(fast_settings(), record=True)
    try:
        hit = await time_calls(on, req, n)
    finally:
        await on.aclose()
    off = await build_gateway(fast_settings(enabled=False), record=True)
    try:
        miss = await time_calls(off, req, n)
    finally:
        await off.aclose()
    return hit, miss


# -- 4. the semantic index at scale ---------------------------------------------------------------


def _partition(text: str, scope: str) -> str:
    request = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": text}]})
    return partition_key(request, scope, exact_signature([features(text)]))


def bench_vectors(n: int, embedder: BuiltinEmbedder) -> np.ndarray:
    """Built-in embeddings of `prompts.prompts(n)` (kept in the temp dir between runs)."""
    assert embedder.name == BuiltinEmbedder().name
    out: np.ndarray = vectors(n)
    return out


def _truth(vectors: np.ndarray, parts: np.ndarray, qvecs: np.ndarray, qparts: np.ndarray) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """The exact nearest entry of each query's partition (row, cosine), by brute force in chunks."""
    best = np.full(len(qvecs), -1, dtype=np.int64)
    score = np.full(len(qvecs), -np.inf, dtype=np.float32)
    for i in range(0, len(vectors), 50_000):
        sims = qvecs @ vectors[i : i + 50_000].T
        sims[qparts[:, None] != parts[None, i : i + 50_000]] = -np.inf
        j = np.argmax(sims, axis=1)
        s = sims[np.arange(len(qvecs)), j]
        better = s > score
        best[better], score[better] = j[better] + i, s[better]
    return best, score


def index_at(n: int, queries: int, embedder: BuiltinEmbedder, partitions: int = 1) -> dict[str, Any]:
    """The index alone at ``n`` entries: search latency, recall against brute force, memory, build time.

    Half the queries are near-duplicates of stored prompts (they should hit),
    half are prompts never stored; each searches the partition of the entry
    it was made from. Baseline, same run: the exact scan the index replaced
    (one matrix product over the partition), timed on 50 of the queries.
    """
    vectors = bench_vectors(n, embedder)
    texts = prompts(n)
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    parts = np.arange(n) % partitions
    names = [f"partition-{p}" for p in range(partitions)]
    # The benchmark's own million texts and keys are not a gateway's: kept out of the collector's
    # passes (as `ax serve` freezes what it has at start-up); the index's rows stay in them.
    gc.collect()
    gc.freeze()
    index = VectorIndex(k=8, capacity=n)  # the graph a gateway allowed n entries builds
    # A million entries take minutes to build on two cores: the graph is kept in the temp dir, by its
    # parameters, and later runs load it (what `ax serve` does at start-up with its snapshot).
    kept = Path(tempfile.gettempdir()) / f"ax-bench-index-{index.describe()}-{n}x{partitions}.npz"
    built = kept.with_suffix(".json")
    if n >= 1_000_000 and kept.exists() and built.exists():
        t0 = time.perf_counter()
        index.load(kept)
        build = (f"loaded in {time.perf_counter() - t0:.1f} s; built by an earlier run in "
                 f"{json.loads(built.read_text())['build_s']:.0f} s (all cores)")
    else:
        t0 = time.perf_counter()
        index.add_many([names[p] for p in parts], keys, vectors[:, None, :], created=np.ones(n),
                       expires=np.zeros(n))
        build_s = time.perf_counter() - t0
        build = f"built in {build_s:.1f} s (all cores)"
        if n >= 1_000_000:
            index.save(kept)
            built.write_text(json.dumps({"build_s": build_s}))
    rng = random.Random(n)
    picks = [rng.randrange(n) for _ in range(queries)]
    asked = [f"{texts[i].lower().rstrip('?')}, please" if q % 2 == 0 else prompt(n + 7 * q)
             for q, i in enumerate(picks)]
    qvecs = embedder.embed_sync(asked)
    qparts = parts[picks]
    latencies: list[float] = []
    cpu: list[float] = []
    found_keys: list[set[str]] = []
    top: list[float] = []
    for q, p in zip(qvecs, qparts, strict=True):
        t0, c0 = time.perf_counter(), time.thread_time()
        found = index.search(names[p], q[None, :], 0.9, now=2.0)
        latencies.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        found_keys.append({c.key for c in found})
        # Unthresholded, for the recall of the nearest entry whatever its similarity.
        best = index.search(names[p], q[None, :], -1.0, now=2.0)
        top.append(best[0].mean if best else -np.inf)
    truth, score = _truth(vectors, parts, qvecs, qparts)
    # Found the nearest, or one exactly as near (a tie).
    recall_top = sum(top[i] >= float(score[i]) - 1e-5 for i in range(queries)) / queries
    should_hit = [i for i in range(queries) if score[i] >= 0.9 + 2e-3]
    recall_hit = sum(keys[truth[i]] in found_keys[i] for i in should_hit) / max(1, len(should_hit))
    scan: list[float] = []
    for q, p in list(zip(qvecs, qparts, strict=True))[:50]:
        members = vectors[parts == p] if partitions > 1 else vectors
        sims = np.empty(len(members), dtype=np.float32)
        t0 = time.perf_counter()
        # In chunks, as the exact index did: BLAS then runs on this thread only.
        for i in range(0, len(members), 2048):
            np.matmul(members[i : i + 2048], q, out=sims[i : i + 2048])
        np.flatnonzero(sims >= 0.9)
        scan.append((time.perf_counter() - t0) * 1000)
    return {
        "n": n, "build": build, "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99),
        "cpu_p50": pct(cpu, 0.5), "cpu_p99": pct(cpu, 0.99),
        "scan_p50": pct(scan, 0.5), "scan_p99": pct(scan, 0.99), "recall_top": recall_top,
        "recall_hit": recall_hit, "should_hit": len(should_hit), "bytes_per_entry": index.bytes_per_entry(),
    }


def worker_lookup(n: int, lookups: int) -> dict[str, tuple[float, float]]:
    """CPU time (ms, p50 and p99) of a miss's lookup in the semantic worker, by what came between two lookups.

    A gateway's worker sleeps between calls, and other processes run on its
    core meanwhile: the same code then runs with cold caches.
    """
    from axtui.cache._worker_child import _Worker

    worker = _Worker(n + 10, 256)
    prefix = b"bench"
    now = time.time()
    for i in range(n):
        worker.store(prefix, [prompt(i)], f"k{i}", now, 0.0)
        worker.add_one()

    def busy() -> None:
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass

    gaps = {"none": lambda: None, "sleep": lambda: time.sleep(0.002), "spin": busy}
    out: dict[str, tuple[float, float]] = {}
    first = 10_000_000
    for name, gap in gaps.items():
        cpu: list[float] = []
        for i in range(lookups):
            gap()
            t0 = time.thread_time()
            worker.look(prefix, [prompt(first + i)], 0.9, now, 0.0)
            cpu.append((time.thread_time() - t0) * 1000)
        first += lookups
        out[name] = (pct(cpu, 0.5), pct(cpu, 0.99))
    return out


async def loop_hold(cache: AnswerCache, calls: int) -> dict[str, float]:
    """How long the event loop is held at a stretch while ``calls`` distinct prompts are looked up and stored.

    A monitor task yields to the loop over and over; the gap between two of
    its turns is how long everything else kept the loop (one step of one
    lookup or store, plus any time the process waited for a core).
    """
    caller = Caller(user="bench")
    answer = ChatResponse("a fresh answer", "m", Usage(10, 10))
    gaps: list[float] = []
    done = False

    async def monitor() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append((now - last) * 1000)
            last = now

    watcher = asyncio.ensure_future(monitor())
    hits = 0
    for i in range(calls):
        text = prompt(3_000_000 + i) if i % 10 else f"{prompt(i).lower().rstrip('?')}, please"
        req = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": text}]})
        hit = await cache.lookup(req, caller, CacheDirective())
        hits += hit is not None
        if hit is None:
            await cache.store(req, caller, answer, 100, CacheDirective())
        await asyncio.sleep(0)
    done = True
    await watcher
    await cache.drain()
    return {"hold_p50": pct(gaps, 0.5), "hold_p99": pct(gaps, 0.99), "hold_p999": pct(gaps, 0.999),
            "hold_max": max(gaps), "hold_hits": hits, "hold_calls": calls}


async def startup_at(n: int, embedder: BuiltinEmbedder) -> dict[str, float]:
    """Start-up with ``n`` entries stored: loading the snapshot vs rebuilding the graph from the store."""
    vectors = bench_vectors(n, embedder)
    texts = prompts(n)
    config = CacheConfig(index_entries=n + 10, write_queue=n + 10, store_bytes=0, memory_entries=10)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ax-bench-startup-") as tmp:
        store = Store.open(f"sqlite:///{tmp}/ax.db")
        try:
            cache = AnswerCache(config, store, embedder=embedder)
            assert cache.tier is not None
            caller = Caller(user="bench")
            scope = scope_for("user", caller)
            part = _partition(texts[0], scope)
            for text, vec in zip(texts, vectors, strict=True):
                key = hashlib.sha256(text.encode()).hexdigest()
                entry = Entry(key, part, scope, caller.user, "m", ChatResponse(f"answer to {text}", "m", Usage(10, 10)),
                              1000, 1.0, 0.0, (features(text),))
                cache.tier.put(entry, vec[None, :], embedder.name)
            cache.tier.flush(timeout=600)
            cache.tier.load_index()  # what another process stored is indexed like this
            await cache.aclose()  # writes the snapshot
            for label in ("snapshot", "rebuild"):
                if label == "rebuild" and cache.snapshot_path is not None:
                    cache.snapshot_path.unlink()
                t0 = time.perf_counter()
                again = AnswerCache(config, store, embedder=embedder)
                assert again.tier is not None
                again.tier.wait_loaded(600)
                timings[label] = time.perf_counter() - t0
                timings[f"{label}_entries"] = len(again.index)
                if label == "snapshot":
                    timings.update(await loop_hold(again, 2_000))
                await again.aclose()
        finally:
            store.close()
    return timings


# -- main ------------------------------------------------------------------------------------------


async def run(quick: bool, semantic_only: bool = False, sizes_arg: str | None = None,
              startup: int | None = None) -> None:
    if not semantic_only:
        await run_savings_and_latency(quick)
    embedder = BuiltinEmbedder()
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    queries = 400 if quick else 1_000
    runs = [(n, 1) for n in sizes] + [(100_000, 1_000)]
    if sizes_arg is not None:
        runs = [(int(n), int(p)) for n, _, p in (item.partition("x") for item in sizes_arg.split(",") if item)]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall-clock tails include waiting "
          "for a core; CPU time is what a search costs")
    for size, partitions in runs:
        where = "one partition (the worst case)" if partitions == 1 else f"{partitions:,} partitions"
        print(f"semantic index alone at {size:,} entries in {where}; built-in embedder, 256 dimensions")
        r = index_at(size, queries, embedder, partitions)
        row("index search p50", f"{r['p50']:.3f} ms", f"exact scan: {r['scan_p50']:.3f} ms")
        row("index search p99", f"{r['p99']:.3f} ms", f"exact scan: {r['scan_p99']:.3f} ms", "<= 1 ms",
            r["p99"] <= 1.0)
        row("index search CPU time p50 / p99", f"{r['cpu_p50']:.3f} / {r['cpu_p99']:.3f} ms", "", "<= 1 ms",
            r["cpu_p99"] <= 1.0)
        row("recall of the nearest entry", f"{r['recall_top']:.2%}", "vs brute force", ">= 99 %",
            r["recall_top"] >= 0.99)
        row("recall of hits (cosine >= 0.9)", f"{r['recall_hit']:.2%}", f"of {r['should_hit']} queries", ">= 99 %",
            r["recall_hit"] >= 0.99)
        row("memory per entry", f"{r['bytes_per_entry']:,} B", r["build"])
    print("a miss's lookup in the semantic worker at 10,000 entries (guards, embedding, search, exact check)")
    w = worker_lookup(10_000, 500 if quick else 1_500)
    row("lookup CPU time p50 / p99, back to back", f"{w['none'][0]:.3f} / {w['none'][1]:.3f} ms")
    row("lookup CPU time p50 / p99, 2 ms asleep", f"{w['sleep'][0]:.3f} / {w['sleep'][1]:.3f} ms",
        "between lookups")
    row("lookup CPU time p50 / p99, 2 ms busy", f"{w['spin'][0]:.3f} / {w['spin'][1]:.3f} ms",
        "elsewhere between lookups")
    if sizes_arg and startup is None:
        return
    n = startup or (20_000 if quick else 100_000)
    print(f"start-up with {n:,} stored entries (SQLite)")
    t = await startup_at(n, embedder)
    row("index ready, from the snapshot", f"{t['snapshot']:.2f} s", f"rebuilt from the store: {t['rebuild']:.2f} s",
        "<= 2 s", t["snapshot"] <= 2.0)
    row("entries indexed", f"{int(t['snapshot_entries']):,}", f"rebuilt: {int(t['rebuild_entries']):,}")
    print(f"the event loop while {int(t['hold_calls']):,} distinct prompts are looked up and stored at {n:,} entries "
          f"({int(t['hold_hits'])} semantic hits)")
    row("loop held at a stretch, p50 / p99", f"{t['hold_p50']:.3f} / {t['hold_p99']:.3f} ms", "", "<= 1 ms",
        t["hold_p99"] <= 1.0)
    row("loop held at a stretch, p99.9 / max", f"{t['hold_p999']:.2f} / {t['hold_max']:.2f} ms",
        "max includes waits for a core")


async def run_savings_and_latency(quick: bool) -> None:
    calls = 1_500 if quick else 3_000
    print(f"bench_cache: standard workload, {calls} calls through the gateway (instant simulated fleet)")
    off = await run_workload(calls, cache_on=False)
    on = await run_workload(calls, cache_on=True)
    cut = 1 - on["upstream"] / off["upstream"]
    rate = on["hits"] / on["calls"]
    row("upstream calls", f"{on['upstream']:,}", f"cache off: {off['upstream']:,}")
    row("upstream calls cut", f"{cut:.1%}", "vs the cache off", ">= 30 %", cut >= 0.30)
    row("hit rate", f"{rate:.1%}", f"cache off: {off['hits'] / off['calls']:.1%}", ">= 40 %", rate >= 0.40)
    row("semantic hits", f"{on['semantic']:,}", f"of {on['hits']:,} hits")
    row("false semantic hits (workload)", f"{on['false_hits']}", "", "0", on["false_hits"] == 0)
    false, pairs = await near_miss_false_hits()
    row("false hits on near-miss pairs", f"{false}", f"of {pairs} pairs, threshold 0.9", "0", false == 0)

    n = 1_000 if quick else 5_000
    print(f"exact hit through the engine (Gateway.call, {n} calls)")
    hit, miss = await exact_hit_latency(n)
    row("exact hit p50", f"{pct(hit, 0.5):.3f} ms", f"uncached call: {pct(miss, 0.5):.3f} ms", "<= 1 ms",
        pct(hit, 0.5) <= 1.0)
    row("exact hit p99", f"{pct(hit, 0.99):.3f} ms", f"uncached call: {pct(miss, 0.99):.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about 10 s)")
    parser.add_argument("--semantic-only", action="store_true", help="only the semantic index and start-up")
    parser.add_argument("--sizes", help="index runs as ENTRIESxPARTITIONS,… (e.g. 100000x1000; empty: none)")
    parser.add_argument("--startup", type=int, help="stored entries for the start-up run")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(run(args.quick, args.semantic_only, args.sizes, args.startup))
    except ImportError:
        asyncio.run(run(args.quick, args.semantic_only, args.sizes, args.startup))


if __name__ == "__main__":
    main()
