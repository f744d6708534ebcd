"""What tracing costs: ax with OTLP export on, beside ax without it, in one run.

Processes: the bench upstream (``bench_gateway``'s minimal OpenAI-compatible
responder), a minimal OTLP/HTTP receiver that accepts every batch, and two
``ax serve`` instances (one worker; key, limits, a hard budget, the exact
cache, routing, pricing, recording), one of them exporting a span tree of
every call to the receiver. The semantic cache is off in both: with it on,
one worker does not yet sustain 500 req/s on the bench's workload
(``bench_gateway``), and what tracing adds does not depend on it. The load is open-loop at 500
req/s, every request a new one; the two gateways are measured in turns
(A, B, A, B …) so drift in a shared machine's load hits both alike, and
each figure is the median over the rounds. The baseline is the same
upstream called directly, measured in the same rounds.

Target: tracing on adds <= 0.2 ms to the p50 (against tracing off).

Run: ``python benchmarks/bench_telemetry.py [--quick]``.
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

from bench_gateway import Run, Target, _spawn, _start_ax, free_port, open_loop, wait_ready

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


async def _rounds(targets: list[Target], rounds: int, duration: float) -> dict[str, list[Run]]:
    import aiohttp

    out: dict[str, list[Run]] = {t.name: [] for t in targets}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        for t in targets:
            await open_loop(session, t, 200, 1.0, "warmup")
        for k in range(rounds):
            for t in targets:
                out[t.name].append(await open_loop(session, t, RATE, duration, f"round{k}"))
                await asyncio.sleep(0.2)
    return out


def main(argv: list[str] | None = None) -> None:
    """Measure and print each figure beside its baseline and the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1.5 s instead of 5 of 3 s")
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
    rounds, duration = (3, 1.5) if args.quick else (5, 3.0)
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
            plain, plain_url, plain_key = _start_ax(upstream, Path(tmp) / "plain", semantic=False)
            procs.append(plain)
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver
            try:
                traced, traced_url, traced_key = _start_ax(upstream, Path(tmp) / "traced", semantic=False)
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

            runs = uvloop.run(_rounds(targets, rounds, duration))
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
    _report(runs, rounds, duration, batches)


def _batches(receiver: str) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{receiver}/batches", timeout=5) as r:
        return int(json.load(r)["batches"])


def _median(runs: list[Run], q: float) -> float:
    return statistics.median(r.p(q) for r in runs)


def _report(runs: dict[str, list[Run]], rounds: int, duration: float, batches: int) -> None:
    print(f"tracing overhead: open loop {RATE} req/s, {rounds} rounds of {duration:g} s per target, "
          f"medians over rounds; {os.cpu_count()} cores shared by upstream, receiver, two gateways and the load\n")
    print(f"{'target':8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'cpu/req ms':>10}")
    for name, rs in runs.items():
        errors = sum(r.errors for r in rs)
        cpu = statistics.median(r.cpu_ms_per_req for r in rs)
        print(f"{name:8} {_median(rs, 0.5):8.2f} {_median(rs, 0.99):8.2f} {errors:7d} {cpu:10.3f}")
    base, traced, direct = runs["ax"], runs["ax+otel"], runs["direct"]
    d50 = _median(traced, 0.5) - _median(base, 0.5)
    d99 = _median(traced, 0.99) - _median(base, 0.99)
    print(f"\nax over direct: p50 +{_median(base, 0.5) - _median(direct, 0.5):.2f} ms; "
          f"ax+otel over direct: p50 +{_median(traced, 0.5) - _median(direct, 0.5):.2f} ms")
    print(f"tracing on adds p50 {d50:+.2f} ms (target <= 0.2) {'OK' if d50 <= 0.2 else 'MISSED'}, "
          f"p99 {d99:+.2f} ms; the receiver took {batches} batches")


if __name__ == "__main__":
    main()
