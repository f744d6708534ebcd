"""What tracing costs: ax with OTLP export on, beside ax without it, in one run.

Processes: the bench upstream (``bench_gateway``'s minimal OpenAI-compatible
responder), a minimal OTLP/HTTP receiver that accepts every batch, and two
``ax serve`` instances (one worker; key, limits, a hard budget, the exact
cache, routing, pricing, recording), one of them exporting a span tree of
every call to the receiver. The semantic cache is off in both unless
``--semantic``: what tracing adds does not depend on it, and at 500 req/s
it puts one gateway worker on this 2-core machine near the knee of its
latency curve (``bench_gateway``), where a run's p50 moves by milliseconds
from one round to the next whatever tracing does. The load is open-loop at
500 req/s, every request a new one (``bench_gateway``'s workload). In each
round the upstream is called directly (the baseline), then both gateways
one after the other, the one that goes first alternating between rounds.
The tracing cost is the median over the rounds of each round's traced p50
minus its untraced p50, so a shared machine's drift from one round to the
next cancels out; the range of those differences is printed beside it.

Target: tracing on adds <= 0.2 ms to the p50 (against tracing off).

The CPU of the gateway process and of its span export process (its child)
are shown apart. ``--per-call`` measures instead, in this process, what one
call's trace costs the gateway process: the call path (begin, two stages,
one attempt, finish) and all of this process's CPU with the hand-over
thread's share, against the same loop with tracing off.

Run: ``python benchmarks/bench_telemetry.py [--quick | --per-call] [--semantic]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gateway import Run, Target, _spawn, _start_ax, cpu_seconds, free_port, open_loop, wait_ready

RATE = 500


def run_receiver(port: int) -> None:
    """An OTLP/HTTP endpoint that reads and accepts every batch (what a collector costs ax is not measured)."""
    from aiohttp import web

    spans = 0

    async def traces(request: web.Request) -> web.Response:
        nonlocal spans
        await request.read()
        spans += 1
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"batches": spans})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/batches", count)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def children_cpu(pid: int) -> float:
    """User plus system CPU time so far of ``pid``'s child processes (the span export process)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += cpu_seconds(int(entry.name))
    return total


async def _rounds(targets: list[Target], rounds: int, duration: float) -> tuple[dict[str, list[Run]], dict[str, list[float]]]:
    """Each target's runs, and the CPU ms per request its child processes spent in each."""
    import aiohttp

    out: dict[str, list[Run]] = {t.name: [] for t in targets}
    child_cpu: dict[str, list[float]] = {t.name: [] for t in targets}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        for t in targets:
            await open_loop(session, t, 200, 1.0, "warmup")
        for k in range(rounds):
            # The gateways take turns going first, so neither is always measured just after the other.
            direct, *gateways = targets
            for t in [direct, *(gateways if k % 2 == 0 else gateways[::-1])]:
                before = children_cpu(t.pid)
                run = await open_loop(session, t, RATE, duration, f"round{k}")
                # The export process works through a round's last batch after the round; wait for it.
                await asyncio.sleep(0.7)
                out[t.name].append(run)
                child_cpu[t.name].append((children_cpu(t.pid) - before) * 1000 / run.sent)
    return out, child_cpu


def main(argv: list[str] | None = None) -> None:
    """Measure and print each figure beside its baseline and the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 rounds of 1.5 s instead of 12 of 3 s")
    parser.add_argument("--per-call", action="store_true", help="what one call's trace costs the gateway process")
    parser.add_argument("--semantic", action="store_true", help="both gateways with the semantic cache on")
    parser.add_argument("--role", choices=["upstream", "receiver"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "receiver":
        run_receiver(args.port)
        return
    if args.role == "upstream":
        from bench_gateway import run_upstream

        run_upstream(args.port)
        return
    if args.per_call:
        per_call()
        return
    rounds, duration = (4, 1.5) if args.quick else (12, 3.0)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="ax-bench-otel-") as tmp:
        try:
            up_port, rx_port = free_port(), free_port()
            upstream, receiver = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{rx_port}"
            me = [sys.executable, str(Path(__file__).resolve())]
            procs.append(up := _spawn([*me, "--role", "upstream", "--port", str(up_port)]))
            procs.append(rx := _spawn([*me, "--role", "receiver", "--port", str(rx_port)]))
            wait_ready(f"{upstream}/v1/models", up)
            wait_ready(f"{receiver}/batches", rx)
            plain, plain_url, plain_key = _start_ax(upstream, Path(tmp) / "plain", semantic=args.semantic)
            procs.append(plain)
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver
            try:
                traced, traced_url, traced_key = _start_ax(upstream, Path(tmp) / "traced", semantic=args.semantic)
            finally:
                del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
            procs.append(traced)
            wait_ready(f"{plain_url}/readyz", plain)
            wait_ready(f"{traced_url}/readyz", traced)
            targets = [
                Target("direct", f"{upstream}/v1/chat/completions", {}, up.pid),
                Target("ax", f"{plain_url}/v1/chat/completions", {"authorization": f"Bearer {plain_key}"},
                       plain.pid),
                Target("ax+otel", f"{traced_url}/v1/chat/completions", {"authorization": f"Bearer {traced_key}"},
                       traced.pid),
            ]
            import uvloop

            runs, child_cpu = uvloop.run(_rounds(targets, rounds, duration))
            batches = _batches(receiver)
        finally:
            for p in reversed(procs):
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
    _report(runs, child_cpu, rounds, duration, batches, args.semantic)


def per_call(calls: int = 40_000, chunk: int = 200) -> None:
    """Print the call path's time and the process's CPU per call, tracing on (exporting to a receiver) and off."""
    import time

    from axtui.telemetry import NO_TELEMETRY, Telemetry
    from axtui.telemetry._otel import OtelTelemetry
    from axtui.types import CallRecord, ChatRequest, ChatResponse, Deployment, Usage

    request = ChatRequest.model_validate({"model": "gpt-4o", "temperature": 0.2,
                                          "messages": [{"role": "user", "content": "a question of some length " * 8}]})
    record = CallRecord(ts=time.time(), user="alice", requested_model="gpt-4o", key="k1", provider="a",
                        model="gpt-4o", deployment="a/gpt-4o", http_status=200, input_tokens=120, output_tokens=40,
                        cost_nanos=123_456, attempts=1, route="default", request_id="req_0123456789abcdef")
    response = ChatResponse(content="an answer", model="gpt-4o", usage=Usage(input_tokens=120, output_tokens=40))
    deployment = Deployment(provider="a", model="gpt-4o", upstream_model="gpt-4o")

    def measure(telemetry: Telemetry) -> tuple[float, float, float]:
        """Per call: the call path's wall time, this thread's CPU, the whole process's CPU (µs)."""
        path = 0.0
        cpu0, own0 = time.process_time(), time.thread_time()
        for _ in range(calls // chunk):
            t0 = time.perf_counter()
            for _ in range(chunk):
                trace = telemetry.begin(request, record)
                with trace.stage("cache lookup"):
                    pass
                with trace.stage("route"):
                    pass
                trace.attempt(deployment, 1).end()
                trace.finish(record, response)
            path += time.perf_counter() - t0
            time.sleep(chunk / RATE)  # 500 calls a second, so the hand-over thread keeps up as in a gateway
        own = time.thread_time() - own0
        return path / calls * 1e6, own / calls * 1e6, (time.process_time() - cpu0) / calls * 1e6

    rx_port = free_port()
    rx = _spawn([sys.executable, str(Path(__file__).resolve()), "--role", "receiver", "--port", str(rx_port)])
    try:
        wait_ready(f"http://127.0.0.1:{rx_port}/batches", rx)
        traced = OtelTelemetry(f"http://127.0.0.1:{rx_port}/v1/traces")
        measure(traced)  # warm up
        off_path, off_own, off_cpu = measure(NO_TELEMETRY)
        on_path, on_own, on_cpu = measure(traced)
        traced.shutdown()
        stats = traced.stats()
    finally:
        rx.send_signal(signal.SIGINT)
        rx.wait(30)
    print(f"one call's trace in the gateway process ({calls} calls at {RATE}/s, begin + 2 stages + 1 attempt + "
          f"finish):")
    print(f"  call path, wall time        {on_path:6.2f} us (tracing off: {off_path:.2f} us)")
    print(f"  call path, its thread's CPU {on_own:6.2f} us (tracing off: {off_own:.2f} us)")
    print(f"  whole process CPU           {on_cpu:6.2f} us (tracing off: {off_cpu:.2f} us): "
          f"+{on_cpu - off_cpu:.2f} us per call, of which the hand-over and counts threads "
          f"{(on_cpu - on_own) - (off_cpu - off_own):.2f} us")
    print(f"  spans: {stats}")


def _batches(receiver: str) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{receiver}/batches", timeout=5) as r:
        return int(json.load(r)["batches"])


def _median(runs: list[Run], q: float) -> float:
    return statistics.median(r.p(q) for r in runs)


def _report(runs: dict[str, list[Run]], child_cpu: dict[str, list[float]], rounds: int, duration: float,
            batches: int, semantic: bool) -> None:
    print(f"tracing overhead: open loop {RATE} req/s, {rounds} rounds of {duration:g} s per target, "
          f"medians over rounds; semantic cache {'on' if semantic else 'off'}; "
          f"{os.cpu_count()} cores shared by upstream, receiver, two gateways and the load\n")
    print(f"{'target':8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'cpu/req ms':>10} {'child cpu/req ms':>16}")
    for name, rs in runs.items():
        errors = sum(r.errors for r in rs)
        cpu = statistics.median(r.cpu_ms_per_req for r in rs)
        kids = statistics.median(child_cpu[name])
        print(f"{name:8} {_median(rs, 0.5):8.2f} {_median(rs, 0.99):8.2f} {errors:7d} {cpu:10.3f} {kids:16.3f}")
    base, traced, direct = runs["ax"], runs["ax+otel"], runs["direct"]
    # Each round's traced run beside the untraced run next to it: the machine's drift between rounds cancels.
    d50s = sorted(t.p(0.5) - b.p(0.5) for t, b in zip(traced, base, strict=True))
    d50 = statistics.median(d50s)
    d99 = statistics.median(t.p(0.99) - b.p(0.99) for t, b in zip(traced, base, strict=True))
    print(f"\nax over direct: p50 +{_median(base, 0.5) - _median(direct, 0.5):.2f} ms; "
          f"ax+otel over direct: p50 +{_median(traced, 0.5) - _median(direct, 0.5):.2f} ms")
    print(f"tracing on adds p50 {d50:+.2f} ms (target <= 0.2) {'OK' if d50 <= 0.2 else 'MISSED'}, "
          f"p99 {d99:+.2f} ms (medians of the {rounds} rounds' differences; p50 differences from "
          f"{d50s[0]:+.2f} to {d50s[-1]:+.2f} ms); the receiver took {batches} batches")


if __name__ == "__main__":
    main()
