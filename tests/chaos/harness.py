"""The delivery chaos harness: the real publisher, two center replicas, Redis and PostgreSQL, each killable.

    with ChaosStack(workdir) as stack:        # Redis (AOF), PostgreSQL, a database, replicas a and b
        stack.start_load()                    # a publisher child: steady alerts through RedisAlertPublisher
        stack.kill_redis(); stack.start_redis()
        stack.stop_load(); stack.wait_drained(); stack.verdict().problems() == []

Every process is real: `valkey-server`/`redis-server` and `postgres` (`tests.support.servers`), two
`python -m gridwatch center` replicas sharing the consumer group `center` and one database (consumer names
`chaos-a` and `chaos-b`, a short claim time), and a publisher child (`python -m tests.chaos.load`) that writes
each alert id to a handover log once its `publish()` returned (`tests.support.handover`). A fault is a signal
to one of them: SIGKILL, or SIGSTOP and SIGCONT; a killed server restarts on the same port and directory, a
killed replica under the same consumer name, a killed publisher on the same journal directory.

Why a kill -9 of Redis loses no acknowledged write: Redis runs with `appendonly yes` and `appendfsync always`.
Redis writes and fsyncs the AOF for the commands of one event-loop iteration before it sends their replies,
so any write a client saw acknowledged (the publisher's XADD, the consumer's XACK, the group's state) is on
disk, and a killed Redis reads it back from the AOF on restart. (`everysec` would survive a process kill in
the common case too, since the write into the kernel precedes the reply, but Redis may postpone that write
while a slow fsync runs; `always` leaves no window, a power cut included.) PostgreSQL runs `durable` (fsync
and synchronous commit on): with `synchronous_commit=off` a commit returns before its WAL leaves shared
memory, and a killed postmaster would lose transactions whose entries the center had already acknowledged.

`verdict()` reads the store and the bus: every id handed over is stored exactly once (the `incident_alerts`
idempotency table; per incident, `count` equals its linked alerts), nothing is stored that was not handed over
(except at most one alert per publisher kill: a `publish()` the kill interrupted), the per-day rollup equals
counting `incidents`, nothing is pending or unread in the group, the dead-letter stream holds exactly the
malformed entries injected on purpose, and both replicas answer the incident list.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from center_api.auth import issue_token
from contracts.bus import ALERTS_STREAM, CENTER_GROUP, DEAD_STREAM
from tests.chaos.verdict import StoreFacts, Verdict, frozen_writers, store_facts, stored_ids
from tests.support.handover import handed_over
from tests.support.paths import REPO
from tests.support.pgdb import PostgresDatabases
from tests.support.rtsp import free_port
from tests.support.servers import PostgresServer, RedisServer, ServerError, StartedThenClosed
from tests.support.stack import DEMO_CONFIG, Process, api_get, gridwatch_args

SECRET = "chaos-secret-of-sufficient-length-for-hs256"
CLAIM_IDLE_MS = 2000  # a paused replica's entries are claimed after this (the claim loop runs every 5 s)
REPLICAS = ("a", "b")
# Malformed stream entries the harness injects: each must end in the dead-letter stream, and nothing else.
MALFORMED: tuple[dict[str, bytes], ...] = (
    {"alert": b"{not json"},
    {"alert": b'{"v": 1, "kind": "intrusion"}'},
    {"something": b"else"},
)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, poll_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll_s)


class Replica:
    """One `gridwatch center` process; restarts keep its port, consumer name and data directory."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.port, self.log_dir = name, free_port(), log_dir
        self.env = env | {
            "GRIDWATCH_CONSUMER_NAME": f"chaos-{name}",
            "GRIDWATCH_DATA_DIR": str(log_dir / name),
        }
        self.process: Process | None = None
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        args = gridwatch_args("center", "--host", "127.0.0.1", "--port", str(self.port))
        self.process = Process(f"center-{self.name}-{self.starts}", args, self.env, self.log_dir)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def ready(self) -> bool:
        return self.alive() and api_get(f"{self.base}/api/v1/health", "", timeout=2)[0] == 200

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None and self.process.alive(), f"replica {self.name} is not running"
        os.kill(self.process.proc.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.proc.wait(timeout=30)
        self.process.stop()  # closes the log

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.proc.pid, signal.SIGCONT)  # a paused replica cannot stop
            self.process.stop()

    def log_tail(self) -> str:
        return self.process.log_tail() if self.process is not None else f"(replica {self.name} never ran)"


class Load:
    """The publisher child (`tests.chaos.load`): steady alerts at `rate`/s until SIGTERM, then it drains."""

    def __init__(self, redis_url: str, workdir: Path, rate: int) -> None:
        self.redis_url, self.rate = redis_url, rate
        self.journal, self.ids, self.log = workdir / "journal", workdir / "handed-over", workdir / "load.log"
        self.child: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self, at_least: int = 1, timeout: float = 60.0) -> None:
        """Start the child; return once it handed over `at_least` alerts (it handles SIGTERM by then)."""
        args = [sys.executable, "-m", "tests.chaos.load", self.redis_url, str(self.journal), str(self.ids)]
        before = len(self.handed())
        with self.log.open("ab") as out:
            self.child = subprocess.Popen(
                [*args, str(self.rate)],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: len(self.handed()) >= before + at_least or not self.running(), timeout, "the load")
        assert self.running(), self.log_tail()

    def handed(self) -> list[str]:
        return handed_over(self.ids)

    def running(self) -> bool:
        return self.child is not None and self.child.poll() is None

    def kill9(self) -> None:
        assert self.child is not None and self.child.poll() is None, self.log_tail()
        self.child.send_signal(signal.SIGKILL)
        self.child.wait(timeout=30)
        self.child, self.kills = None, self.kills + 1

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM: the child stops publishing, sends what its journal holds, and exits (0: drained)."""
        if self.child is None:
            return 0
        self.child.send_signal(signal.SIGTERM)
        try:
            code = self.child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            code = self.child.wait(timeout=30)
        self.child = None
        return code

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "--- load ---\n" + "\n".join(text[-lines:])


class ChaosStack(StartedThenClosed):
    def __init__(self, workdir: Path, rate: int = 200) -> None:
        self.workdir = workdir
        self.rate = rate
        self.redis = RedisServer(databases=1, extra_args=["--appendonly", "yes", "--appendfsync", "always"])
        self.postgres = PostgresServer(durable=True)
        self.replicas: dict[str, Replica] = {}
        self.load: Load | None = None
        self.injected: set[str] = set()
        self._database: contextlib.ExitStack | None = None
        self.database_url = ""  # SQLAlchemy's form, for the centers
        self.libpq_url = ""  # asyncpg's, for the harness's own reads

    # --- lifetime ----------------------------------------------------------------------------------------
    def start(self) -> ChaosStack:
        self.redis.start()
        self.postgres.start()
        self._database = contextlib.ExitStack()
        self.database_url = self._database.enter_context(
            PostgresDatabases(self.postgres.admin_url).database("gridwatch_chaos")
        )
        self.libpq_url = self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        env = dict(os.environ) | {
            "GRIDWATCH_REDIS_URL": self.redis.url,
            "GRIDWATCH_DATABASE_URL": self.database_url,
            "GRIDWATCH_CONFIG_DIR": str(DEMO_CONFIG),
            "GRIDWATCH_JWT_SECRET": SECRET,
            "GRIDWATCH_CLAIM_IDLE_MS": str(CLAIM_IDLE_MS),
        }
        self.load = Load(self.redis.url, self.workdir, self.rate)
        for name in REPLICAS:  # one after the other: the first one creates the schema
            self.replicas[name] = Replica(name, env, self.workdir)
            self.start_replica(name)
        return self

    def close(self) -> None:
        if self.load is not None and self.load.child is not None:
            self.load.child.kill()
            self.load.child.wait(timeout=30)
        for replica in self.replicas.values():
            replica.stop()
        if self._database is not None:
            with contextlib.suppress(ServerError):
                self._database.close()
        self.postgres.close()
        self.redis.close()

    def logs(self) -> str:
        parts = [r.log_tail() for r in self.replicas.values()]
        return "\n".join([*parts, self.load.log_tail() if self.load else ""])

    # --- faults and recoveries ---------------------------------------------------------------------------
    def start_replica(self, name: str, timeout: float = 60.0) -> None:
        replica = self.replicas[name]
        replica.start()
        try:
            wait_for(replica.ready, timeout, f"replica {name} to serve", poll_s=0.2)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{replica.log_tail()}") from None

    def kill_redis(self) -> None:
        self.redis.kill()

    def start_redis(self) -> None:
        self.redis.start()  # same port, same directory: the AOF is read back

    def kill_postgres(self) -> None:
        self.postgres.kill()

    def start_postgres(self, timeout: float = 60.0) -> None:
        """Restart the postmaster (also right after a kill -9)."""
        self.postgres.restart(timeout)

    def ensure_running(self) -> None:
        """Bring back whatever an earlier case left down (so that a failed case does not fail the next)."""
        if self.redis.proc is None or self.redis.proc.poll() is not None:
            self.redis.kill()
            self.start_redis()
        if self.postgres.proc is None or self.postgres.proc.poll() is not None:
            self.postgres.kill()
            self.start_postgres()
        for name, replica in self.replicas.items():
            if replica.alive():
                replica.signal(signal.SIGCONT)  # a paused one goes on
            else:
                replica.stop()  # closes the log of the one that died
                self.start_replica(name)

    # --- load --------------------------------------------------------------------------------------------
    def start_load(self, at_least: int = 200) -> None:
        """Start the publisher child and return once `at_least` alerts were handed over."""
        assert self.load is not None
        self.load.start(at_least)

    def stop_load(self) -> None:
        assert self.load is not None
        code = self.load.stop()
        assert code == 0, f"the publisher did not drain its journal ({code})\n{self.load.log_tail()}"

    def inject_malformed(self) -> None:
        client = self._bus()
        try:
            for fields in MALFORMED:
                self.injected.add(client.xadd(ALERTS_STREAM, fields).decode())  # type: ignore[arg-type,union-attr]
        finally:
            client.close()

    # --- observing ---------------------------------------------------------------------------------------
    def _bus(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url, socket_timeout=10, socket_connect_timeout=10)

    def facts(self) -> StoreFacts:
        return asyncio.run(store_facts(self.libpq_url))

    def stored_ids(self) -> set[str]:
        return asyncio.run(stored_ids(self.libpq_url))

    def frozen_writers(self, idle_s: float) -> int:
        """Database sessions idle for `idle_s` inside a transaction that holds row locks."""
        return asyncio.run(frozen_writers(self.libpq_url, idle_s))

    def group_state(self) -> tuple[int, int, dict[str, int]]:
        """(pending, unread, pending per consumer) of the center's group."""
        client = self._bus()
        try:
            (group,) = [g for g in client.xinfo_groups(ALERTS_STREAM) if g["name"] == CENTER_GROUP.encode()]
            consumers = {
                c["name"].decode(): int(c["pending"])
                for c in client.xinfo_consumers(ALERTS_STREAM, CENTER_GROUP)
            }
            return int(group["pending"]), int(group["lag"] or 0), consumers
        finally:
            client.close()

    def wait_stored(self, ids: list[str], timeout: float) -> float:
        """Wait until the store holds every id of `ids`; the seconds it took."""
        t0 = time.monotonic()
        wanted = set(ids)
        try:
            wait_for(
                lambda: wanted <= self.stored_ids(), timeout, f"{len(wanted)} alerts stored", poll_s=0.25
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {self.verdict().problems()}\n{self.logs()}") from None
        return time.monotonic() - t0

    def wait_drained(self, timeout: float = 90.0) -> None:
        """Wait until every id handed over is stored and the group holds nothing pending or unread."""
        assert self.load is not None
        self.wait_stored(self.load.handed(), timeout)
        try:
            wait_for(lambda: self.group_state()[:2] == (0, 0), timeout, "the group to drain")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {self.verdict().problems()}\n{self.logs()}") from None

    def verdict(self) -> Verdict:
        assert self.load is not None
        handed = self.load.handed()
        facts = self.facts()
        stored = facts.stored
        pending, unread, _ = self.group_state()
        client = self._bus()
        try:
            dead = {fields[b"entry_id"].decode() for _, fields in client.xrange(DEAD_STREAM)}
        finally:
            client.close()
        token = issue_token(SECRET, subject="chaos", role="city_command", station_id=None)
        api = {
            name: api_get(f"{r.base}/api/v1/incidents?limit=5", token, timeout=10)[0]
            for name, r in self.replicas.items()
        }
        return Verdict(
            handed=len(handed),
            stored=len(stored & set(handed)),
            lost=sorted(set(handed) - stored),
            duplicated=facts.duplicated,
            miscounted=facts.miscounted,
            unknown=len(stored - set(handed)),
            publisher_kills=self.load.kills,
            rollup_diff=facts.rollup_diff,
            pending=pending,
            unread=unread,
            dead_extra=sorted(dead - self.injected),
            dead_missing=sorted(self.injected - dead),
            api=api,
            crashed=[
                f"{log.name}: {line.strip()}"
                for log in sorted(self.workdir.glob("center-*.log"))
                for line in log.read_text(errors="replace").splitlines()
                if "background task" in line and "died" in line
            ],
        )
