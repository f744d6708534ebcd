"""Monitoring: export of 1M calls, live snapshot cost at 1,000 calls/s, alert evaluation with 100 rules.

Each figure is printed beside a baseline measured in the same run and the target:

- **export**: ``ax monitor export`` of 1M recorded calls to CSV and to JSON,
  run as the real command in its own process; rows per second and the
  process's peak memory (target < 150 MB: streaming, flat memory). Baseline:
  the same rows read with the bare ``sqlite3`` module and written with
  ``csv.writer``, with no conversion (the floor of any Python export).
- **live**: 15 minutes of traffic at 1,000 calls/s (6 providers, 12
  deployments, 200 users) counted into the live windows; the cost per call
  counted, and of one ``snapshot()`` (totals, 5-minute and 15-minute
  series, every table row, the recent calls) with its JSON. Baseline: a
  naive recount of the last minute from the raw records (sorting latencies).
  Targets: <= 20 µs per call; snapshot <= 10 ms (a dashboard at 2 Hz).
- **history**: `axtui.metrics.history.history` over rollups as 10M calls in
  30 days leave them (6 providers, 200 users); target <= 100 ms per query.
- **alerts**: one evaluation of 100 stored rules (live rules over every
  dimension, filters on two dimensions, spend and budget rules) on those
  windows. Baseline: an evaluation with no rules (reading the rule table).
  Target: <= 50 ms per evaluation (every 5 s: < 1 % of a core).

Run: ``python benchmarks/bench_metrics.py [--rows N] [--history-calls N] [--only export|live|alerts|history]``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from time import perf_counter as perf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from axtui.clock import FakeClock  # noqa: E402
from axtui.config import Settings  # noqa: E402
from axtui.types import CallRecord  # noqa: E402

PROVIDERS = ("openai", "azure", "anthropic", "gemini", "groq", "local")
MODELS = ("gpt-4o-mini", "gpt-4o")
T0 = 1_750_000_000.0


def line(what: str, value: str, baseline: str, target: str) -> None:
    print(f"  {what:<44} {value:>16}   baseline {baseline:>16}   target {target}")


# -- export ------------------------------------------------------------------------------------


def _generate(db: Path, n: int) -> float:
    """Fill a migrated store with ``n`` calls via executemany; returns seconds taken."""
    from axtui.store import Store

    store = Store.open(f"sqlite:///{db}")
    store.close()
    cols = (
        "request_id, ts, user, key, tags, endpoint, requested_model, provider, model, deployment, status, "
        "error_class, error_message, http_status, latency_ms, ttft_ms, input_tokens, cached_input_tokens, "
        "cache_write_tokens, output_tokens, reasoning_tokens, usage_estimated, cost_nanos, saved_nanos, cache, "
        "similarity, attempts, route, rule, variant, region, prompt_hash, stream, prompt"
    )
    sql = f"INSERT INTO calls ({cols}) VALUES ({', '.join('?' * 34)})"
    t = perf()
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    batch = []
    for i in range(n):
        p = PROVIDERS[i % 6]
        m = MODELS[i % 2]
        ok = i % 50 != 0
        batch.append((
            f"chatcmpl-{i:012d}", T0 + i * 0.001, f"user{i % 200}", None, "team-a" if i % 4 == 0 else "", "chat",
            "fast", p, m, f"{p}/{m}", "ok" if ok else "error", None if ok else "ProviderServerError",
            None if ok else "upstream said 503, retry later", 200 if ok else 503, 50.0 + (i * 7919 % 295_000) / 100,
            20.0 + (i * 104_729 % 38_000) / 100, 500 + i % 1000, 0, 0, 100 + i % 300, 0, 0, None if i % 97 == 0 else 1_234 * (i % 1000),
            None, "miss", None, 1, "latency", None, None, "", f"{i:016x}", 0, None,
        ))  # fmt: skip
        if len(batch) == 50_000:
            con.executemany(sql, batch)
            batch.clear()
    con.executemany(sql, batch)
    con.commit()
    con.close()
    return perf() - t


def _floor_export(db: Path, out: Path, limit: int) -> float:
    t = perf()
    con = sqlite3.connect(db)
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        cur = con.execute("SELECT * FROM calls ORDER BY ts, id LIMIT ?", (limit,))
        while rows := cur.fetchmany(5000):
            w.writerows(rows)
    con.close()
    return perf() - t


def _cli_export(home: Path, fmt: str, out: Path, extra: tuple[str, ...] = ()) -> tuple[float, float]:
    """Run ``ax monitor export`` in its own process: (seconds, peak RSS in MB)."""
    args = ["monitor", "export", "--format", fmt, "-o", str(out), *extra]
    code = (
        "import resource, sys\n"
        "from axtui.cli import main\n"
        "try:\n"
        f"    main({args!r}, standalone_mode=False)\n"
        "finally:\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    env = {**os.environ, "AX_HOME": str(home)}
    env.pop("AX_DATABASE_URL", None)
    t = perf()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    elapsed = perf() - t
    if proc.returncode != 0:
        raise SystemExit(f"export failed: {proc.stderr[-2000:]}")
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    return elapsed, peak_kb / 1024


def bench_export(rows: int) -> None:
    print(f"export of {rows:,} calls (`ax monitor export`, own process)")
    subset = min(rows, 200_000)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db = home / "ax.db"
        gen = _generate(db, rows)
        print(f"  (generated {rows:,} calls with executemany in {gen:.1f} s, {db.stat().st_size / 1e6:.0f} MB)")
        floor_rate = subset / _floor_export(db, home / "floor.csv", subset)
        out = home / "calls.csv"
        secs, peak = _cli_export(home, "csv", out)
        line(f"csv, {rows:,} calls: rows per second", f"{rows / secs:,.0f}", f"{floor_rate:,.0f}", "streaming")
        line(f"csv, {rows:,} calls: peak memory", f"{peak:,.0f} MB", "", "< 150 MB")
        line(f"csv, {rows:,} calls: file size", f"{out.stat().st_size / 1e6:,.0f} MB", "", "")
        with out.open(newline="") as f:
            n = sum(1 for _ in csv.reader(f)) - 1
        assert n == rows, f"exported {n} rows, expected {rows}"
        # JSON on the first 200k calls (the rate is the same; the run stays short).
        until = f"@{T0 + subset * 0.001}"
        secs, peak = _cli_export(home, "json", home / "calls.json", ("--until", until))
        line(f"json, {subset:,} calls: rows per second", f"{subset / secs:,.0f}", f"{floor_rate:,.0f}", "streaming")
        line(f"json, {subset:,} calls: peak memory", f"{peak:,.0f} MB", "", "< 150 MB")


# -- live --------------------------------------------------------------------------------------


def _records(n: int, clock: FakeClock, rnd: random.Random) -> list[CallRecord]:
    out = []
    for i in range(n):
        p = PROVIDERS[i % 6]
        m = MODELS[(i // 6) % 2]
        status = "ok" if i % 40 else ("error" if i % 80 else "rate_limited")
        out.append(CallRecord(
            ts=clock.now(), user=f"user{rnd.randrange(200)}", requested_model="fast", status=status,  # type: ignore[arg-type]
            provider=p, model=m, deployment=f"{p}/{m}", latency_ms=rnd.lognormvariate(6, 0.6),
            ttft_ms=rnd.uniform(20, 300), input_tokens=500, output_tokens=150, cost_nanos=rnd.randrange(10**6),
            cache="exact" if i % 7 == 0 else "miss", request_id=f"r{i}",
        ))  # fmt: skip
    return out


def _naive_totals(records: list[tuple[float, CallRecord]], now: float) -> tuple[int, float | None]:
    recent = [r for t, r in records if t > now - 60]
    lat = sorted(r.latency_ms for r in recent if r.status in ("ok", "error"))
    return len(recent), (lat[int(0.95 * (len(lat) - 1))] if lat else None)


def bench_live() -> tuple[object, FakeClock]:
    from axtui.metrics.live import LiveMetrics

    print("live windows at 1,000 calls/s, 15 minutes full (6 providers, 12 deployments, 200 users)")
    clock = FakeClock(T0)
    settings = Settings()
    live = LiveMetrics(settings.metrics, clock=clock)
    rnd = random.Random(1)
    per_second = _records(1000, clock, rnd)
    kept: list[tuple[float, CallRecord]] = []
    spent = 0.0
    counted = 0
    # The first 13 minutes at a tenth of the rate fill every slot and histogram of
    # the series (what a snapshot reads) in a tenth of the time; the last two
    # minutes, the recent window's, run at the full 1,000 calls/s and are timed.
    for second in range(900):
        batch = per_second if second >= 780 else per_second[::10]
        t = perf()
        for rec in batch:
            live.observe(rec)
        if second >= 780:
            spent += perf() - t
            counted += len(batch)
        kept.extend((clock.now(), r) for r in per_second[::10])  # a tenth, for the naive baseline's size
        clock.advance(1.0)
    per_call = spent / counted * 1e6
    line("cost per call counted", f"{per_call:.1f} µs", "", "<= 20 µs")
    line("CPU at 1,000 calls/s", f"{per_call * 1000 / 1e4:.1f} % core", "", "")
    times: dict[str, list[float]] = {"snap300": [], "snap900": [], "json": [], "naive": []}
    for _ in range(20):
        clock.advance(0.5)
        for rec in per_second[:500]:
            live.observe(rec)
        t = perf()
        snap = live.snapshot(series_s=300)
        times["snap300"].append(perf() - t)
        t = perf()
        live.snapshot()
        times["snap900"].append(perf() - t)
        t = perf()
        snap.dumps()
        times["json"].append(perf() - t)
        t = perf()
        _naive_totals(kept[-60_000:], clock.now())
        times["naive"].append((perf() - t) * 10)  # scaled to the full 60k calls of a minute
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    line("snapshot, 5-minute series (median)", f"{med['snap300']:.2f} ms", f"{med['naive']:.1f} ms", "<= 10 ms")
    line("snapshot, 15-minute series (median)", f"{med['snap900']:.2f} ms", f"{med['naive']:.1f} ms", "<= 10 ms")
    line("snapshot to JSON, 5-minute series", f"{med['json']:.2f} ms", "", "")
    line("snapshot JSON size, 5-minute series", f"{len(snap.dumps()) / 1024:.0f} KiB", "", "")
    return live, clock


# -- alerts ------------------------------------------------------------------------------------


def _rules() -> list[str]:
    rules = []
    metrics = ("p95_latency_ms > 2500", "p99_latency_ms > 4000", "error_rate > 5%", "rps < 1", "cache_hit_rate < 0.1",
               "ttft_ms > 500", "rate_limited > 100", "tokens_per_min > 1000000")  # fmt: skip
    for i, m in enumerate(metrics):
        rules.append(f"{m} for 5m")
        for p in PROVIDERS:
            rules.append(f"{m} where provider={p}")
        rules.append(f"{m} where user=user{i},provider=openai")
    for i in range(100 - len(rules) - 6):
        rules.append(f"p95_latency_ms > {1000 + i} where user=user{i}")
    rules += ["spend_usd > 100 per day", "spend_usd > 10 per hour where provider=openai",
              "spend_usd > 500 per month where user=user3", "budget_used_pct >= 80", "budget_used_pct >= 90 where user=user1",
              "cost_per_min_usd > 5"]  # fmt: skip
    assert len(rules) == 100, len(rules)
    return rules


def bench_alerts(live: object, clock: FakeClock) -> None:
    import logging

    from axtui.metrics.alerts.evaluator import AlertEvaluator

    logging.getLogger("axtui.alerts").setLevel(logging.ERROR)  # rules do fire here; their lines are noise
    from axtui.metrics.alerts.storage import add_rule
    from axtui.store import Store

    print("alert evaluation, 100 rules on the live windows above")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/ax.db")
        settings = Settings()
        ev = AlertEvaluator(store, live, settings, clock=clock)  # type: ignore[arg-type]

        async def timed(n: int) -> float:
            await ev.evaluate_once()  # warm: parse rules, fill the spend cache
            samples = []
            for _ in range(n):
                clock.advance(5)
                t = perf()
                await ev.evaluate_once()
                samples.append(perf() - t)
            return statistics.median(samples) * 1000

        empty = asyncio.run(timed(20))
        for text in _rules():
            add_rule(store, text, now=clock.now())
        full = asyncio.run(timed(20))
        line("one evaluation of 100 rules (median)", f"{full:.2f} ms", f"{empty:.2f} ms", "<= 50 ms")
        line("CPU at one evaluation every 5 s", f"{full / 5000 * 100:.2f} % core", "", "< 1 %")
        store.close()


# -- history -----------------------------------------------------------------------------------


def _fill_rollups(db: Path, calls: int, days: int) -> int:
    """Rollup rows as ``calls`` calls over ``days`` days would leave them (7 days of minutes); returns rows."""
    from axtui.store.tables_cost import MEASURE_COLUMNS

    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    width = len(MEASURE_COLUMNS)
    cols = "dim, bucket, value, provider, " + ", ".join(MEASURE_COLUMNS)
    marks = ", ".join("?" * (4 + width))
    end = int(T0 // 86400) * 86400
    start = end - days * 86400
    per_minute = calls / (days * 1440)
    total = 0

    def measures(n: int) -> list[float]:
        m = [0.0] * width
        m[0], m[1], m[3], m[6], m[8], m[9], m[13] = n, n // 50, 500 * n, 150 * n, 40_000 * n, n, 800.0 * n
        m[width - 22 + 12] = n  # every call in one latency bucket (700 ms - 1 s)
        return m

    # Minutes for the last day only: rows outside a query's range do not change its cost
    # (the primary key leads with dim and bucket), and filling a week of them takes long.
    for grain, size, since in (("minute", 60, end - 86400), ("hour", 3600, start), ("day", 86400, start)):
        per_bucket = per_minute * size / 60
        # As many (user, provider) rows as the calls of a bucket can fill, at most 200 users.
        users = min(200, max(1, int(per_bucket / 12)))
        rows = []
        for bucket in range(since, end, size):
            n_user = max(1, int(per_bucket / (users * 6)))
            for p in PROVIDERS:
                rows.append(("all", bucket, "", p, *measures(int(per_bucket / 6))))
                for m in MODELS:
                    rows.append(("model", bucket, m, p, *measures(int(per_bucket / 12))))
                for u in range(users):
                    rows.append(("user", bucket, f"user{(u * 7 + bucket // size) % 200}", p, *measures(n_user)))
            if len(rows) > 100_000:
                con.executemany(f"INSERT OR IGNORE INTO cost_rollup_{grain} ({cols}) VALUES ({marks})", rows)
                total += len(rows)
                rows.clear()
        con.executemany(f"INSERT OR IGNORE INTO cost_rollup_{grain} ({cols}) VALUES ({marks})", rows)
        total += len(rows)
    con.commit()
    con.close()
    return total


def bench_history(calls: int) -> None:
    from axtui.metrics.history import history
    from axtui.store import Store

    print(f"history queries over the rollups of {calls:,} calls in 30 days")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ax.db"
        store = Store.open(f"sqlite:///{db}")
        t = perf()
        rows = _fill_rollups(db, calls, 30)
        print(f"  (wrote {rows:,} rollup rows in {perf() - t:.1f} s)")
        end = int(T0 // 86400) * 86400
        day, week, month = end - 86400, end - 7 * 86400, end - 30 * 86400
        cases = [
            ("last 3 hours by minute", dict(since=end - 3 * 3600, until=end, step="minute")),
            ("last 24 h by hour, by provider", dict(since=day, until=end, step="hour", by="provider")),
            ("last 7 days by hour, one user", dict(since=week, until=end, step="hour", user="user7")),
            ("last 30 days by day, top 10 users", dict(since=month, until=end, step="day", by="user")),
            ("last 30 days by hour, openai", dict(since=month, until=end, step="hour", provider="openai")),
        ]
        for name, kw in cases:
            samples = []
            for _ in range(5):
                t = perf()
                h = history(store, **kw)  # type: ignore[arg-type]
                samples.append(perf() - t)
            assert h.points, name
            line(name, f"{statistics.median(samples) * 1000:.1f} ms", "", "<= 100 ms")
        store.close()


def main() -> None:
    """Run every monitoring benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="calls to export (default 1M)")
    parser.add_argument("--history-calls", type=int, default=10_000_000, help="calls the history rollups stand for")
    parser.add_argument(
        "--only", action="append", choices=["export", "live", "alerts", "history"], help="run only these parts"
    )
    args = parser.parse_args()
    t = time.time()
    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} cores: figures stretch with a busy machine)")
    only = set(args.only or ("export", "live", "alerts", "history"))
    if "export" in only:
        bench_export(args.rows)
    if only & {"live", "alerts"}:
        live, clock = bench_live()
        if "alerts" in only:
            bench_alerts(live, clock)
    if "history" in only:
        bench_history(args.history_calls)
    print(f"(monitoring benchmarks took {time.time() - t:.0f} s; peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
