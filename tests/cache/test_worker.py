"""The semantic worker: a lookup's CPU work and the index in a process of their own, and what happens when it fails."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from axtui.cache import AnswerCache
from axtui.cache import service as service_module
from axtui.cache import worker as worker_module
from axtui.cache.semantic import BuiltinEmbedder
from axtui.ports import CacheDirective
from axtui.types import Caller

from ..support import assert_ends_with_its_killed_parent, running, until
from .helpers import answer, request

Make = Callable[..., AnswerCache]
ALICE = Caller(user="alice")
BOB = Caller(user="bob")
PLAIN = CacheDirective()
QUESTION = "How do I read a file line by line in Python?"
PARAPHRASE = "in python, how do i read a file line by line"


async def put(cache: AnswerCache, text: str, reply: str, caller: Caller = ALICE) -> None:
    await cache.store(request(text), caller, answer(reply), 1_000, PLAIN)
    await cache.drain()


def worker_pid(cache: AnswerCache) -> int:
    assert cache.worker is not None
    pid = cache.worker._channel.pid
    assert pid > 0
    return pid


alive = running


async def test_the_guards_embedding_and_search_run_in_the_worker_not_the_gateway(
    make_cache: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache()
    assert cache.worker is not None and worker_pid(cache) != os.getpid()

    def nowhere(*args: object, **kwargs: object) -> object:
        raise AssertionError("semantic work ran in the gateway's process")

    # Were any of them called here, the lookup would fail (and be logged as a miss).
    monkeypatch.setattr(service_module, "features", nowhere)
    monkeypatch.setattr(BuiltinEmbedder, "embed_sync", nowhere)
    monkeypatch.setattr(BuiltinEmbedder, "_one", nowhere)
    await put(cache, QUESTION, "Iterate over the file object.")
    hit = await cache.lookup(request(PARAPHRASE), ALICE, PLAIN)
    assert hit is not None and hit.kind == "semantic" and hit.response.content == "Iterate over the file object."
    # Scopes hold in the worker's answers as in the gateway's: bob never sees alice's answer.
    assert await cache.lookup(request(PARAPHRASE), BOB, PLAIN) is None
    assert await cache.lookup(request("How do I delete a file in Python?"), ALICE, PLAIN) is None
    assert cache.snapshot()["index_entries"] == 1


async def test_a_miss_is_kept_with_its_lookups_work_and_found_by_meaning_after(
    make_cache: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache()
    assert cache.worker is not None
    await put(cache, QUESTION, "Iterate over the file object.")  # the partition is no longer empty
    other = "What is the best way to sort a list of tuples in Python?"
    assert await cache.lookup(request(other), ALICE, PLAIN) is None

    async def no_second_trip(*args: object, **kwargs: object) -> object:
        raise AssertionError("keeping a miss's answer asked the worker to work it out again")

    # The lookup embedded the question: keeping its answer only hands the vectors back.
    monkeypatch.setattr(cache.worker, "store", no_second_trip)
    await put(cache, other, "Use sorted with a key.")
    assert cache.counters.dropped_writes == 0
    hit = await cache.lookup(request("in python, what is the best way to sort a list of tuples"), ALICE, PLAIN)
    assert hit is not None and hit.kind == "semantic" and hit.response.content == "Use sorted with a key."
    assert await cache.lookup(request("in python, what is the best way to sort a list of tuples"), BOB, PLAIN) is None
    assert cache.snapshot()["index_entries"] == 2


async def test_a_huge_prompt_is_cached_exactly_and_never_takes_the_worker_down(make_cache: Make) -> None:
    cache = make_cache()
    await put(cache, QUESTION, "with open(path) as f: for line in f: ...")
    pid = worker_pid(cache)
    # Two and a half megabytes of distinct words: its guards alone would not fit the worker's answer.
    huge = " ".join(f"w{i:x}" for i in range(420_000))
    await put(cache, huge, "a summary")
    hit = await cache.lookup(request(huge), ALICE, PLAIN)
    assert hit is not None and hit.kind == "exact"
    assert await cache.lookup(request(huge + " please"), ALICE, PLAIN) is None
    # Asked straight, past the cache's limit: the worker drops what it cannot answer, and lives.
    assert cache.worker is not None
    assert await cache.worker.lookup(b"p", [huge[: 1_900_000]], 0.9, now=time.time(), min_created=0.0) is None
    for _ in range(100):  # once it is through that text (seconds of guards), it answers again
        near = await cache.lookup(request(PARAPHRASE), ALICE, PLAIN)
        if near is not None:
            break
        await asyncio.sleep(0.1)
    assert near is not None and near.kind == "semantic"
    assert worker_pid(cache) == pid and cache.worker.restarts == 0


async def test_a_killed_worker_is_replaced_and_reloaded_and_no_call_fails_meanwhile(make_cache: Make) -> None:
    cache = make_cache()
    await put(cache, QUESTION, "Iterate over the file object.")
    assert (await cache.lookup(request(PARAPHRASE), ALICE, PLAIN)) is not None
    first = worker_pid(cache)
    os.kill(first, signal.SIGKILL)
    # Calls go on at once: while no worker answers, a semantic lookup is a miss, never an error.
    looked = await asyncio.gather(*(cache.lookup(request(PARAPHRASE), ALICE, PLAIN) for _ in range(20)))
    assert all(hit is None or hit.kind == "semantic" for hit in looked)
    # An exact hit never needs the worker.
    exact = await cache.lookup(request(QUESTION), ALICE, PLAIN)
    assert exact is not None and exact.kind == "exact"
    assert cache.worker is not None
    await until(lambda: cache.worker is not None and cache.worker.restarts == 1, timeout=15)
    assert worker_pid(cache) != first and not alive(first)
    assert cache.snapshot()["worker_restarts"] == 1

    async def found_again() -> bool:
        hit = await cache.lookup(request(PARAPHRASE), ALICE, PLAIN)
        return hit is not None and hit.kind == "semantic"

    # The new worker is loaded from the store by the writer thread's next idle turn.
    deadline = time.monotonic() + 15
    while not await found_again():
        assert time.monotonic() < deadline, "the replaced worker never found the stored answer again"
        await asyncio.sleep(0.1)
    # And it keeps answers stored after it started.
    await put(cache, "Why is the sky blue?", "Rayleigh scattering.")
    hit = await cache.lookup(request("why is the sky blue"), ALICE, PLAIN)
    assert hit is not None and hit.response.content == "Rayleigh scattering."


async def test_a_stuck_worker_costs_a_lookup_at_most_its_timeout(
    make_cache: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "LOOKUP_TIMEOUT_S", 0.1)
    cache = make_cache(persistent=False)
    await put(cache, QUESTION, "Iterate over the file object.")
    pid = worker_pid(cache)
    os.kill(pid, signal.SIGSTOP)
    try:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        t0 = time.monotonic()
        hits = await asyncio.gather(*(cache.lookup(request(PARAPHRASE), ALICE, PLAIN) for _ in range(50)))
        waited = time.monotonic() - t0
        ticker.cancel()
        assert hits == [None] * 50
        assert cache.snapshot()["worker_unanswered"] >= 50
        # The loop ran all along (the lookups waited on a timer, not on the worker).
        assert ticks >= 5 and waited < 5
        # Keeping an answer meanwhile does not wait for the worker either: it is served exactly.
        await cache.store(request("Why is the sky blue?"), ALICE, answer("Rayleigh."), 1, PLAIN)
        exact = await cache.lookup(request("Why is the sky blue?"), ALICE, PLAIN)
        assert exact is not None and exact.kind == "exact"
    finally:
        os.kill(pid, signal.SIGCONT)
    await cache.drain()
    hit = await cache.lookup(request(PARAPHRASE), ALICE, PLAIN)
    assert hit is not None and hit.kind == "semantic"


async def test_closing_the_cache_ends_its_worker_and_the_snapshot_brings_the_index_back(make_cache: Make) -> None:
    first = make_cache()
    await put(first, QUESTION, "Iterate over the file object.")
    pid = worker_pid(first)
    await first.aclose()
    await until(lambda: not alive(pid), timeout=10)
    assert first.snapshot_path is not None and first.snapshot_path.exists()
    second = make_cache()
    assert second.tier is not None
    await asyncio.to_thread(second.tier.wait_loaded, 30)
    hit = await second.lookup(request(PARAPHRASE), ALICE, PLAIN)
    assert hit is not None and hit.kind == "semantic"


@pytest.mark.processes
def test_the_worker_answers_lookups_while_a_snapshot_is_written(tmp_path: Path) -> None:
    # The worker's loop, driven over its two sockets by a script; its snapshot takes two seconds.
    script = textwrap.dedent(
        """
        import marshal, os, socket, time
        from axtui.cache import _worker_child as child

        def slow_save(self, path):
            time.sleep(2)
            return self.index.save(__import__("pathlib").Path(path)), None

        child._Worker.save = slow_save
        lookups, their_lookups = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        control, their_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if os.fork() == 0:
            lookups.close(); control.close()
            child.serve(their_lookups, their_control, 1000, 256)
        their_lookups.close(); their_control.close()
        start = time.monotonic()
        control.send(marshal.dumps(("save", %r)))
        time.sleep(0.2)  # the snapshot is being written
        for i in range(5):
            lookups.send(marshal.dumps(("look", i, b"prefix", ["how do I read a file"], 0.9, time.time(), 0.0)))
            while marshal.loads(lookups.recv(1 << 21))[0] == "e":
                pass  # the index's figures
        looked = time.monotonic() - start
        saved = marshal.loads(control.recv(1 << 21))
        print(looked, time.monotonic() - start, saved)
        """
    ) % str(tmp_path / "index.npz")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    looked, saved_after, saved = done.stdout.split(" ", 2)
    assert float(looked) < 1.5 <= float(saved_after), done.stdout  # the lookups did not wait for the snapshot
    assert saved.strip() == "('ok', 0, None)" and (tmp_path / "index.npz").exists()
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.processes
def test_a_worker_never_outlives_its_gateway_process(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys, time
        from axtui.cache import AnswerCache, BuiltinEmbedder
        from axtui.config import CacheConfig
        from axtui.store import Store

        async def main():
            store = Store.open("sqlite:///{tmp_path / 'ax.db'}")
            cache = AnswerCache(CacheConfig(), store, embedder=BuiltinEmbedder())
            print(cache.worker._channel.pid, flush=True)
            time.sleep(60)

        asyncio.run(main())
        """
    )
    assert_ends_with_its_killed_parent(script, "the semantic worker")
