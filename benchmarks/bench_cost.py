"""Cost benchmark: reports over 1M and 10M calls, rollups against a raw scan; budget overhead.

Synthetic calls (1,000 a minute, 50 users, 10 keys, 12 models on 6
providers, 4 tag sets) are written straight into a SQLite store: the call
log by one ``INSERT … SELECT`` over a one-minute template, and the rollups
from that template's own aggregate (every minute alike), so ten million
calls take seconds instead of the hours a recorder would. The call log's
indexes are dropped to load it fast: the raw scans cover the whole range,
which no index shortens.

Printed, each beside its target:

1. ``summary`` and ``breakdown`` (by model, by user, by day) over the whole
   range, from the rollups and as a raw scan of the call log, with the
   ratio; and a check that both give exactly the same figures
   (target: ≤ 100 ms from the rollups at 10M calls);
2. the rollup hook's cost per recorded call (a batch of 2,000);
3. budget reserve + settle per call, with two hard budgets in force, one at
   a time (target: p50 ≤ 1 ms a call) and 200 at once, and with no budget.

Run: ``python benchmarks/bench_cost.py [--small]`` (``--small``: 1M only);
exits 1 when a target is missed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

HOME = tempfile.mkdtemp(prefix="ax-bench-cost-")
os.environ["AX_HOME"] = HOME

from sqlalchemy import func, select, text  # noqa: E402

from axtui.clock import FakeClock  # noqa: E402
from axtui.cost.budgets import Scope, set_budget  # noqa: E402
from axtui.cost.enforcement import BudgetBook  # noqa: E402
from axtui.cost.reports import breakdown, summary  # noqa: E402
from axtui.cost.rollups import aggregate, write_rollups  # noqa: E402
from axtui.store import Call, Store  # noqa: E402
from axtui.store.recorder import record_to_row  # noqa: E402
from axtui.store.tables_cost import MEASURE_COLUMNS, ROLLUP_TABLES  # noqa: E402
from axtui.types import Caller, CallRecord, Deployment  # noqa: E402

PER_MINUTE = 1000
T0 = 1_790_000_000 // 86400 * 86400  # a UTC midnight
TARGET_MS = 100.0
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("azure", "gpt-4o"), ("azure", "gpt-4o-mini"),
          ("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-flash"),
          ("gemini", "gemini-2.5-pro"), ("groq", "llama-3.3-70b-versatile"), ("local", "llama-3.3-70b-versatile"),
          ("local", "llama3.1:8b"), ("openai", "o4-mini")]
TAGS: list[tuple[str, ...]] = [(), ("team-a",), ("team-b",), ("team-a", "prod")]


def template() -> list[CallRecord]:
    """One minute of calls; every minute of the data set repeats it."""
    out = []
    for j in range(PER_MINUTE):
        provider, model = MODELS[j % len(MODELS)]
        failed = j % 97 == 0
        unpriced = j % 211 == 0
        hit = j % 13 == 0
        out.append(CallRecord(
            ts=T0 + j * (60 / PER_MINUTE), user=f"user{j % 50:02d}", requested_model=model,
            status="error" if failed else "ok", key=f"k_{j % 10}" if j % 3 else None, tags=TAGS[j % len(TAGS)],
            provider=provider, model=model, deployment=f"{provider}/{model}",
            latency_ms=150.0 + (j * 37) % 4000, ttft_ms=80.0 + j % 300,
            input_tokens=200 + j % 1500, cached_input_tokens=(j % 5) * 40, output_tokens=50 + j % 700,
            cost_nanos=None if unpriced or failed else 1_000 + (j * 7919) % 2_000_000,
            cache="exact" if hit else "miss", saved_nanos=12_345 if hit else None,
        ))
    return out


def build(calls: int) -> tuple[Store, float, float]:
    """A fresh store holding ``calls`` synthetic calls and their rollups."""
    path = os.path.join(HOME, f"bench-{calls}.db")
    store = Store.open(f"sqlite:///{path}")
    minutes = calls // PER_MINUTE
    tpl = template()
    cols = [c.name for c in Call.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
    with store.engine.begin() as conn:
        raw = conn.connection.dbapi_connection  # type: ignore[union-attr]
        raw.execute("PRAGMA synchronous=OFF")
        for index in ("ix_calls_user_ts", "ix_calls_provider_ts", "ix_calls_model_ts", "ix_calls_ts"):
            raw.execute(f"DROP INDEX IF EXISTS {index}")
        raw.execute("CREATE TEMP TABLE mins (m INTEGER PRIMARY KEY)")
        raw.executemany("INSERT INTO mins VALUES (?)", [(m,) for m in range(minutes)])
        raw.execute(f"CREATE TEMP TABLE tpl AS SELECT {', '.join(cols)} FROM calls WHERE 0")
        rows = [record_to_row(r) for r in tpl]
        raw.executemany(f"INSERT INTO tpl ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [[row[c] for c in cols] for row in rows])
        select_cols = ", ".join("ts + m * 60" if c == "ts" else c for c in cols)
        raw.execute(f"INSERT INTO calls ({', '.join(cols)}) SELECT {select_cols} FROM mins, tpl")
        # Rollups: the template's minute rows for every minute; hours and days scaled by
        # how many of their minutes hold data.
        grains = aggregate(tpl)
        keys = ["dim", "bucket", "value", "provider", *MEASURE_COLUMNS]
        minute_table = ROLLUP_TABLES["minute"][1].name
        raw.execute(f"CREATE TEMP TABLE tplr AS SELECT * FROM {minute_table} WHERE 0")
        raw.executemany(f"INSERT INTO tplr VALUES ({', '.join('?' * len(keys))})",
                        [[d, b, v, p, *m] for (d, b, v, p), m in grains["minute"].items()])
        sel = ", ".join("bucket + m * 60" if k == "bucket" else k for k in keys)
        # In key order, so the WITHOUT ROWID table is appended to rather than split all over.
        raw.execute(f"INSERT INTO {minute_table} ({', '.join(keys)}) SELECT {sel} FROM tplr, mins "
                    "ORDER BY tplr.dim, mins.m, tplr.value, tplr.provider")
        end = T0 + minutes * 60
        for grain in ("hour", "day"):
            width, table = ROLLUP_TABLES[grain]
            out = []
            for bucket in range(T0, end, width):
                covered = (min(end, bucket + width) - bucket) // 60
                for (d, _b, v, p), m in grains[grain].items():
                    out.append([d, bucket, v, p, *(x * covered for x in m)])
            raw.executemany(f"INSERT INTO {table.name} ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                            out)
    return store, float(T0), float(T0 + minutes * 60)


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median wall time in ms over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def raw_summary(store: Store, lo: float, hi: float) -> tuple[int, int]:
    c = Call.__table__.c  # type: ignore[attr-defined]
    return store.run(lambda conn: tuple(conn.execute(
        select(func.coalesce(func.sum(c.cost_nanos), 0), func.count(), func.sum(c.input_tokens),
               func.sum(c.output_tokens)).where(c.ts >= lo, c.ts < hi)).one()[:2]))


def raw_group(store: Store, column: str, lo: float, hi: float) -> dict[Any, int]:
    return store.run(lambda conn: dict(conn.execute(text(
        f"SELECT {column}, COALESCE(SUM(cost_nanos), 0) FROM calls WHERE ts >= :lo AND ts < :hi GROUP BY 1"),
        {"lo": lo, "hi": hi}).all()))


def report_sizes(calls: int, failures: list[str]) -> None:
    t = time.perf_counter()
    store, lo, hi = build(calls)
    print(f"\n{calls:,} calls over {(hi - lo) / 86400:.1f} days (built in {time.perf_counter() - t:.1f} s)")
    try:
        ms_sum, s = timed(lambda: summary(store, lo, hi))
        raw_ms, (raw_cost, raw_calls) = timed(lambda: raw_summary(store, lo, hi), repeat=1)
        exact = (s.total_nanos, s.totals.calls) == (raw_cost, raw_calls)
        print(f"  summary        rollups {ms_sum:8.1f} ms  raw scan {raw_ms:8.1f} ms  ratio {raw_ms / ms_sum:7.0f}×  "
              f"target ≤ {TARGET_MS:.0f} ms  exact: {'yes' if exact else 'NO'}")
        odd_lo = lo + 37 * 60 + 3600 * 5  # a window with minute and hour edges
        ms_odd, _ = timed(lambda: summary(store, odd_lo, hi - 600))
        print(f"  summary (edges) rollups {ms_odd:7.1f} ms  (start and end inside hours)")
        for by, column in (("model", "model"), ("user", '"user"'), ("day", None)):
            ms_b, b = timed(lambda by=by: breakdown(store, by, lo, hi))
            line = f"  breakdown {by:<5} rollups {ms_b:8.1f} ms"
            if column is not None:
                raw_b_ms, groups = timed(lambda column=column: raw_group(store, column, lo, hi), repeat=1)
                same = {r.key: r.totals.cost_nanos for r in b.rows} == {k or "": v for k, v in groups.items()}
                line += f"  raw scan {raw_b_ms:8.1f} ms  ratio {raw_b_ms / ms_b:7.0f}×  exact: {'yes' if same else 'NO'}"
                exact = exact and same
            print(line + f"  target ≤ {TARGET_MS:.0f} ms")
            if ms_b > TARGET_MS:
                failures.append(f"breakdown by {by} over {calls:,} calls took {ms_b:.1f} ms")
        if ms_sum > TARGET_MS:
            failures.append(f"summary over {calls:,} calls took {ms_sum:.1f} ms")
        if not exact:
            failures.append(f"rollups and raw scan disagree at {calls:,} calls")
    finally:
        store.close()
        for name in os.listdir(HOME):
            if name.startswith(f"bench-{calls}.db"):
                os.remove(os.path.join(HOME, name))


def hook_cost() -> None:
    store = Store.open(f"sqlite:///{os.path.join(HOME, 'hook.db')}")
    base = template()[:1000] * 2
    rounds = [[replace(r, ts=r.ts + i * 60) for r in base] for i in range(5)]
    t = time.perf_counter()
    for batch in rounds:
        store.run(lambda conn, b=batch: write_rollups(conn, b))
    per_call = (time.perf_counter() - t) / (len(rounds) * len(base)) * 1e6
    print(f"\nrollup hook      {per_call:6.1f} µs a recorded call (batches of {len(base):,}; 3 grains × 5 dimensions, "
          "in the recorder's thread)")
    store.close()


async def budget_overhead(failures: list[str]) -> None:
    store = Store.open(f"sqlite:///{os.path.join(HOME, 'budget.db')}")
    clock = FakeClock()
    dep, caller = Deployment("openai", "gpt-4o", "gpt-4o"), Caller("alice")
    n = 2000

    async def sequential(book: BudgetBook) -> tuple[float, float, float]:
        """p50 and p99 of what a call waits (reserve + settle), and wall time a call with the background writes."""
        seen = []
        t = time.perf_counter()
        for _ in range(n):
            t1 = time.perf_counter()
            await book.settle(await book.reserve(caller, dep, 1000), 900)
            seen.append((time.perf_counter() - t1) * 1e6)
        await book.flush()
        seen.sort()
        return seen[n // 2], seen[n * 99 // 100], (time.perf_counter() - t) / n * 1e6

    none_us, _, _ = await sequential(BudgetBook(store, clock=clock))
    set_budget(store, Scope("global"), "month", 10**15, hard=True, now=clock.now())
    set_budget(store, Scope.parse("user:alice"), "day", 10**15, hard=True, now=clock.now())
    book = BudgetBook(store, clock=clock)
    seq_p50, seq_p99, seq_wall = await sequential(book)

    async def one() -> None:
        for _ in range(10):
            await book.settle(await book.reserve(caller, dep, 1000), 900)

    t = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(200)))
    await book.flush()
    conc_us = (time.perf_counter() - t) / 2000 * 1e6
    print(f"budget reserve+settle, no budget      {none_us:8.1f} µs a call (p50)")
    print(f"budget reserve+settle, 2 hard budgets {seq_p50:8.1f} µs a call waits (p50, one at a time; p99 "
          f"{seq_p99:.0f} µs; {seq_wall:.0f} µs wall with the background writes)  target p50 ≤ 1000 µs")
    print(f"budget reserve+settle, 2 hard budgets {conc_us:8.1f} µs a call (200 at once, wall time / calls)")
    if seq_p50 > 1000:
        failures.append(f"reserve+settle took {seq_p50:.0f} µs a call (p50)")
    store.close()


def main() -> int:
    """Run every figure; return 1 when a target is missed."""
    failures: list[str] = []
    sizes = [1_000_000] if "--small" in sys.argv else [1_000_000, 10_000_000]
    try:
        for calls in sizes:
            report_sizes(calls, failures)
        hook_cost()
        asyncio.run(budget_overhead(failures))
    finally:
        shutil.rmtree(HOME, ignore_errors=True)
    for f in failures:
        print(f"MISSED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
