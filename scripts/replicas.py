#!/usr/bin/env python3
"""Start PostgreSQL, Redis and several `ax serve` replicas sharing them, on 127.0.0.1.

    python scripts/replicas.py                 # three replicas; Ctrl-C stops everything
    python scripts/replicas.py --replicas 2 --config my-ax.toml

PostgreSQL and Redis come from the Debian packages (``postgresql``,
``redis-server``), each on a free port with its data in a temporary folder,
as ``.ci/run`` starts them. When ``AX_TEST_POSTGRES_URL`` and
``AX_TEST_REDIS_URL`` are set (CI exports them) those servers are used
instead: the fleet gets a database of its own on that PostgreSQL (dropped
at the end) and a Redis database of its own (flushed at the start).

Every replica is a separate ``ax serve --no-auth`` process with the same
``AX_HOME`` (so the same config file), ``AX_DATABASE_URL`` and
``AX_REDIS_URL``: limits, budgets, the cache and the records are shared
through PostgreSQL and Redis only. Tests use `Fleet` directly
(``tests/replicas``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType

__all__ = ["Fleet", "Services", "free_port"]

#: The simulated providers every replica serves, instant and never failing.
DEFAULT_CONFIG = """\
[[providers]]
name = "openai"
kind = "sim"
profile = "fast"
models = ["gpt-4o-mini", "gpt-4o"]
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class Services:
    """One PostgreSQL database and one Redis database for a fleet, started here or borrowed.

    ``postgres_url`` and ``redis_url`` are what the replicas use.
    """

    def __init__(self, postgres_url: str | None = None, redis_url: str | None = None) -> None:
        self._given_pg = postgres_url or os.environ.get("AX_TEST_POSTGRES_URL")
        self._given_redis = redis_url or os.environ.get("AX_TEST_REDIS_URL")
        self._dir = Path(tempfile.mkdtemp(prefix="ax-replicas-"))
        self._pgdata: Path | None = None
        self._redis: subprocess.Popen[bytes] | None = None
        self._database = f"ax_fleet_{uuid.uuid4().hex[:10]}"
        self._admin_url = ""
        self.postgres_url = ""
        self.redis_url = ""

    @staticmethod
    def available() -> str | None:
        """Why services cannot be had here, or None when they can."""
        if os.environ.get("AX_TEST_POSTGRES_URL") and os.environ.get("AX_TEST_REDIS_URL"):
            return None
        if _pg_bin() is None:
            return "PostgreSQL is not installed (Debian package postgresql) and AX_TEST_POSTGRES_URL is not set"
        if shutil.which("redis-server") is None:
            return "Redis is not installed (Debian package redis-server) and AX_TEST_REDIS_URL is not set"
        return None

    def start(self) -> Services:
        """Start (or borrow) PostgreSQL and Redis and make the fleet's databases."""
        self._admin_url = self._given_pg or self._start_postgres()
        self._make_database()
        base = self._given_redis or self._start_redis()
        self.redis_url = base.rsplit("/", 1)[0] + "/7" if base.count("/") > 2 else base + "/7"
        self._run_redis("FLUSHDB")
        return self

    def stop(self) -> None:
        """Drop the fleet's database and stop whatever was started here."""
        if self._admin_url:
            with contextlib.suppress(Exception):
                self._psql(f'DROP DATABASE IF EXISTS "{self._database}" WITH (FORCE)')
        if self._redis is not None:
            self._redis.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._redis.wait(10)
        if self._pgdata is not None:
            self._as_postgres([str(self._pgbin / "pg_ctl"), "-D", str(self._pgdata), "-m", "immediate", "stop"])
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- PostgreSQL ------------------------------------------------------------------------------

    @property
    def _pgbin(self) -> Path:
        found = _pg_bin()
        if found is None:
            raise RuntimeError(Services.available() or "PostgreSQL is not installed")
        return found

    def _as_postgres(self, argv: list[str]) -> None:
        if os.geteuid() == 0:  # initdb refuses root: run it as the postgres user, as .ci/run does
            argv = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(argv)]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _start_postgres(self) -> str:
        self._pgdata = self._dir / "pg"
        self._pgdata.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self._dir, "postgres")
            shutil.chown(self._pgdata, "postgres")
        port = free_port()
        self._as_postgres([str(self._pgbin / "initdb"), "-D", str(self._pgdata), "-A", "trust", "-U", "postgres"])
        opts = f"'-p {port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off'"
        self._as_postgres([str(self._pgbin / "pg_ctl"), "-D", str(self._pgdata), "-o", opts,
                           "-l", str(self._pgdata / "log"), "-w", "start"])
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _psql(self, sql: str) -> None:
        from sqlalchemy import create_engine, text

        url = self._admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()

    def _make_database(self) -> None:
        self._psql(f'CREATE DATABASE "{self._database}"')
        self.postgres_url = self._admin_url.rsplit("/", 1)[0] + f"/{self._database}"

    # -- Redis -----------------------------------------------------------------------------------

    def _start_redis(self) -> str:
        port = free_port()
        self._redis = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if self._redis.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0"

    def _run_redis(self, *command: str) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            client.execute_command(*command)
        finally:
            client.close()


class Fleet:
    """Several `ax serve` replicas on one PostgreSQL and one Redis.

    Args:
        replicas: how many ``ax serve`` processes.
        config: the TOML every replica reads (sim providers by default).
        services: the databases (started with `Services` when None).
        extra_env: more environment for every replica (and for `ax`).
    """

    def __init__(self, replicas: int = 3, *, config: str = DEFAULT_CONFIG, services: Services | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.count = replicas
        self.services = services or Services()
        self._own_services = services is None
        self.home = Path(tempfile.mkdtemp(prefix="ax-fleet-home-"))
        (self.home / "config").mkdir()
        self.config_path = self.home / "config" / "config.toml"
        self.config_path.write_text(config, encoding="utf-8")
        self._extra_env = extra_env or {}
        self.procs: list[subprocess.Popen[bytes] | None] = []
        self.urls: list[str] = []
        self._logs: list[Path] = []

    @property
    def env(self) -> dict[str, str]:
        """The environment every replica (and an `ax` command against the fleet) runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
        env.update({"AX_HOME": str(self.home), "AX_CONFIG": str(self.config_path),
                    "AX_DATABASE_URL": self.services.postgres_url, "AX_REDIS_URL": self.services.redis_url})
        env.update(self._extra_env)
        return env

    def start(self, timeout: float = 90.0) -> Fleet:
        """Start the services (if owned) and every replica; returns when all answer /readyz."""
        if self._own_services:
            self.services.start()
        # Migrate once, before the replicas race to it.
        self.ax("db", "upgrade")
        for i in range(self.count):
            port = free_port()
            log = self.home / f"replica-{i}.log"
            self._logs.append(log)
            with log.open("wb") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "axtui", "serve", "--no-auth", "--port", str(port)],
                    env=self.env, stdout=out, stderr=subprocess.STDOUT))
            self.urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + timeout
        for i, url in enumerate(self.urls):
            while not self._ready(url):
                proc = self.procs[i]
                if proc is None or proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"replica {i} did not start:\n{self.log(i)[-3000:]}")
                time.sleep(0.1)
        return self

    @staticmethod
    def _ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log(self, i: int) -> str:
        """What replica ``i`` printed."""
        return self._logs[i].read_text(encoding="utf-8", errors="replace") if i < len(self._logs) else ""

    def ax(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an ``ax`` command against the fleet's store and config."""
        return subprocess.run([sys.executable, "-m", "axtui", *args], env=self.env, capture_output=True,
                              text=True, check=check, timeout=120)

    def kill(self, i: int) -> None:
        """``kill -9`` replica ``i``."""
        proc = self.procs[i]
        if proc is not None:
            proc.kill()
            proc.wait(30)
            self.procs[i] = None

    def stop(self) -> list[int]:
        """Stop every replica gracefully (SIGINT, as Ctrl-C), then the services; their exit codes."""
        codes = []
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            if proc is not None:
                try:
                    codes.append(proc.wait(60))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    codes.append(proc.wait(10))
        self.procs = [None] * len(self.procs)
        if self._own_services:
            self.services.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        return codes

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def main() -> None:
    """Run a fleet until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--config", type=Path, default=None, help="ax config TOML for every replica")
    args = parser.parse_args()
    why = Services.available()
    if why:
        sys.exit(why)
    config = args.config.read_text(encoding="utf-8") if args.config else DEFAULT_CONFIG

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # `kill` stops the fleet as Ctrl-C does
    fleet = Fleet(args.replicas, config=config)
    try:
        fleet.start()
        print(f"PostgreSQL: {fleet.services.postgres_url}\nRedis:      {fleet.services.redis_url}")
        for i, url in enumerate(fleet.urls):
            print(f"replica {i}: {url}")
        print(f"ax against the fleet: AX_HOME={fleet.home} AX_DATABASE_URL={fleet.services.postgres_url} "
              f"AX_REDIS_URL={fleet.services.redis_url} ax …\nCtrl-C stops everything.", flush=True)
        while all(p is not None and p.poll() is None for p in fleet.procs):
            time.sleep(0.5)
        print("a replica stopped; stopping the fleet", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        fleet.stop()


if __name__ == "__main__":
    main()
