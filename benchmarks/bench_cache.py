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
4. Semantic lookup at 10k and 100k entries in one partition (the worst
   case: one model, one scope): the index search alone, checked against a
   brute-force matrix product, and the whole lookup (embed, search,
   guards); plus the index's memory per 100k entries.

Targets: upstream calls cut >= 30 %, hit rate >= 40 %, 0 false semantic
hits; exact hit p50 <= 1 ms; semantic lookup p99 <= 5 ms at 100k entries.

Run: ``python benchmarks/bench_cache.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import tempfile
import time
import tracemalloc
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
from axtui.cache.keys import partition_key, scope_for  # noqa: E402
from axtui.cache.text import words  # noqa: E402
from axtui.config import CacheConfig, ProviderConfig, Settings  # noqa: E402
from axtui.engine.compose import build_gateway  # noqa: E402
from axtui.engine.gateway import Gateway  # noqa: E402
from axtui.errors import AxError  # noqa: E402
from axtui.ports import CacheDirective  # noqa: E402
from axtui.providers.sim import fleet  # noqa: E402
from axtui.providers.sim.workload import NEAR_MISSES, Workload  # noqa: E402
from axtui.types import Caller, ChatRequest, ChatResponse, Usage  # noqa: E402


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


# -- 4. semantic lookup at scale ---------------------------------------------------------------

_VERBS = ("explain", "summarise", "compare", "list the benefits of", "describe", "give examples of", "criticise",
          "outline the history of", "teach me", "write a poem about", "find problems with", "review")
_TOPICS = ("database indexes", "sourdough baking", "tax returns", "black holes", "jazz chords", "kubernetes pods",
           "bird migration", "espresso grinding", "linear algebra", "chess endgames", "volcano formation",
           "rust lifetimes", "garden compost", "solar panels", "marathon training", "medieval castles",
           "coral reefs", "quantum computing", "bread yeast", "vintage cameras", "roman roads", "honey bees")
_ANGLES = ("for a beginner", "for an expert", "in simple words", "with an analogy", "step by step",
           "in a paragraph", "as a table", "for a child", "with code", "with pros and cons", "briefly",
           "in detail")


def synthetic_prompts(n: int, rng: random.Random) -> list[str]:
    """Distinct questions in shared words, each with a serial word that sets it apart.

    The serial is a code like ``q17x``, not a number, and no prompt has a
    number or a negation: they all fall in one partition (the worst case for
    a search; prompts that differ in their numbers would each get their
    own). The guards still keep the codes apart, as names.
    """
    return [
        f"{rng.choice(_VERBS).capitalize()} {rng.choice(_TOPICS)} {rng.choice(_ANGLES)}, case q{i}x?"
        for i in range(n)
    ]


def _partition(text: str, scope: str) -> str:
    request = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": text}]})
    return partition_key(request, scope, exact_signature([features(text)]))


def fill(cache: AnswerCache, prompts: list[str], vectors: np.ndarray) -> tuple[list[str], str]:
    """Index every prompt as a stored answer (as the cache does after a store), without the store.

    Returns the keys and the partition they all share.
    """
    caller = Caller(user="bench")
    scope = scope_for("user", caller)
    parts = {_partition(text, scope) for text in prompts}
    assert len(parts) == 1, f"the prompts fall in {len(parts)} partitions, not one"
    (part,) = parts
    keys = []
    for text, vec in zip(prompts, vectors, strict=True):
        key = hashlib.sha256(text.encode()).hexdigest()
        entry = Entry(key, part, scope, caller.user, "m", ChatResponse(f"answer to {text}", "m", Usage(10, 10)),
                      1000, 1.0, 0.0, (features(text),))
        cache.memory.put(entry)
        cache.index.add(part, key, vec[None, :], created=1.0, expires=0.0)
        keys.append(key)
    return keys, part


async def semantic_at(n: int, queries: int, embedder: BuiltinEmbedder) -> dict[str, Any]:
    rng = random.Random(n)
    prompts = synthetic_prompts(n, rng)
    vectors = embedder.embed_sync(prompts)
    cache = AnswerCache(CacheConfig(memory_entries=n + 10, memory_bytes=1 << 40), None, embedder=embedder)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keys, part = fill(cache, prompts, vectors)
    index_bytes = cache.index.nbytes()
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    caller = Caller(user="bench")
    # Near-duplicates of stored prompts (should hit) and new prompts (should miss), alternately.
    picks = [rng.randrange(n) for _ in range(queries)]
    asked = [
        f"please, {prompts[i].lower().rstrip('?')}!!" if q % 2 == 0 else synthetic_prompts(1, rng)[0].replace(
            "case", "item")
        for q, i in enumerate(picks)
    ]
    qvecs = embedder.embed_sync(asked)
    search_ms, found_keys = [], []
    for q in qvecs:
        t0 = time.perf_counter()
        found = cache.index.search(part, q[None, :], 0.9, now=2.0)
        search_ms.append((time.perf_counter() - t0) * 1000)
        found_keys.append({c.key for c in found})
    # Checked after timing: a brute-force product of the whole matrix would disturb the timings.
    exact_mismatch = 0
    for q, got in zip(qvecs, found_keys, strict=True):
        brute = {keys[i] for i in np.flatnonzero(np.einsum("ij,j->i", vectors, q) >= 0.9 + 2e-3)}
        if not (brute <= got or len(got) == cache.index.k):
            exact_mismatch += 1
    lookup_ms, hits, correct = [], 0, 0
    for q, (text, i) in enumerate(zip(asked, picks, strict=True)):
        req = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": text}]})
        t0 = time.perf_counter()
        hit = await cache.lookup(req, caller, CacheDirective())
        lookup_ms.append((time.perf_counter() - t0) * 1000)
        if hit is not None:
            hits += 1
            correct += hit.response.content == f"answer to {prompts[i]}" and q % 2 == 0
    return {
        "n": n,
        "search_p50": pct(search_ms, 0.5),
        "search_p99": pct(search_ms, 0.99),
        "lookup_p50": pct(lookup_ms, 0.5),
        "lookup_p99": pct(lookup_ms, 0.99),
        "hits": hits,
        "correct": correct,
        "expected_hits": (queries + 1) // 2,
        "inexact": exact_mismatch,
        "index_bytes": index_bytes,
        "traced_bytes": traced,
    }


# -- main ------------------------------------------------------------------------------------------


async def run(quick: bool, semantic_only: bool = False) -> None:
    if not semantic_only:
        await run_savings_and_latency(quick)
    embedder = BuiltinEmbedder()
    sizes = (10_000,) if quick else (10_000, 100_000)
    for size in sizes:
        print(f"semantic lookup at {size:,} entries in one partition (built-in embedder, 256 dimensions)")
        r = await semantic_at(size, 400 if quick else 1_000, embedder)
        row("index search p50", f"{r['search_p50']:.3f} ms")
        row("index search p99", f"{r['search_p99']:.3f} ms", "", "<= 5 ms", r["search_p99"] <= 5.0)
        row("search misses vs brute force", f"{r['inexact']}", "of the queries", "0", r["inexact"] == 0)
        row("whole lookup p50 (embed+search+guards)", f"{r['lookup_p50']:.3f} ms")
        row("whole lookup p99", f"{r['lookup_p99']:.3f} ms", "", "<= 5 ms", r["lookup_p99"] <= 5.0)
        row("near-duplicate queries answered", f"{r['correct']}/{r['expected_hits']}",
            f"all hits: {r['hits']}")
        per100k = r["index_bytes"] * 100_000 / size
        row("index memory per 100k entries", f"{per100k / 2**20:.1f} MiB",
            f"traced with entries: {r['traced_bytes'] * 100_000 / size / 2**20:.0f} MiB")


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
    parser.add_argument("--semantic-only", action="store_true", help="only the semantic lookup at scale")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(run(args.quick, args.semantic_only))
    except ImportError:
        asyncio.run(run(args.quick, args.semantic_only))


if __name__ == "__main__":
    main()
