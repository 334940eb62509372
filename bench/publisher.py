"""Publisher benchmark: the write-ahead publisher against the in-memory path it replaced, and kill -9 losses.

    .venv/bin/python bench/publisher.py [--alerts 20000] [--snapshot-kb 20] [--rounds 3] [--trials 5]

Runs against a private Redis (tests.support.servers, AOF on so that a restarted server keeps what it had):
  floor    a bare loop on the caller's thread, one XADD per alert: what any publisher pays Redis
  memory   the previous design, reimplemented here: publish() puts the alert on an in-memory queue (1,000); a
           sender thread runs the exactly-once Lua XADD per alert; the disk journal is used only when the
           queue is full or Redis is down, and replayed before the queue once Redis is back
  wal      RedisAlertPublisher: publish() writes ahead to the journal (group-committed fsync); the sender
           pipelines batches from it and acknowledges them once Redis has them
Throughput: N alerts handed over as fast as the caller can, until the stream holds them all (alerts/s), and
the caller's cost of one publish() call (median and p99). The variants run in interleaved rounds; the table
shows medians.
Kill trials: a child publishes 2,000 alerts/s; "up": kill -9 after a random time with Redis up; "replay":
Redis goes away for a second, comes back, and the child is killed once the replay of its backlog is under way.
A new publisher of the same variant then sends what the journal holds; lost = ids whose publish() returned
that never reach the stream, duplicated = stream entries beyond one per id. The memory path's overflow journal
is today's log, faster than the file pair per alert it had: its numbers flatter it. Prints a table, then one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from contracts.alerts import Alert  # noqa: E402
from contracts.bus import ALERTS_MAXLEN, ALERTS_STREAM, decode_alert_entry  # noqa: E402
from detection.journal import AlertJournal  # noqa: E402
from detection.publisher import _XADD_ONCE, SENT_PREFIX, RedisAlertPublisher  # noqa: E402
from tests.support.handover import HandoverLog, handed_over  # noqa: E402

VARIANTS = ("floor", "memory", "wal")
KILL_RATE = 2000
_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)


def make_alert(n: int) -> Alert:
    return Alert(
        kind="intrusion", severity=2, camera_id="cam-bench", captured_at=datetime.now(UTC), detail=f"#{n}"
    )


class MemoryPublisher:
    """The design before the write-ahead journal (its sender logic, reimplemented to compare against)."""

    def __init__(self, url: str, journal_dir: Path, queue_size: int = 1000) -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=None)
        self.script = self.redis.register_script(_XADD_ONCE)
        self.queue: queue.Queue[tuple[bytes, bytes | None]] = queue.Queue(maxsize=queue_size)
        self.journal = AlertJournal(journal_dir)
        self.connected = True
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None:
        item = (alert.model_dump_json().encode(), snapshot)
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.journal.append(*item)

    @property
    def drained(self) -> bool:
        return self.queue.empty() and len(self.journal) == 0

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.journal.close()
        self.redis.close()

    def _xadd(self, alert_json: bytes, snapshot: bytes | None) -> None:
        args: list[object] = [86_400, ALERTS_MAXLEN, "alert", alert_json] + (
            ["snapshot", snapshot] if snapshot else []
        )
        self.script(keys=[ALERTS_STREAM, SENT_PREFIX + json.loads(alert_json)["id"]], args=args)

    def _run(self) -> None:
        while not self.stop.is_set():
            if not self.connected:
                while not self.queue.empty():  # Redis is down: spool what waits in memory to the journal
                    self.journal.append(*self.queue.get_nowait())
                self.stop.wait(0.2)
                try:
                    self.connected = bool(self.redis.ping())
                except _DOWN:
                    pass
                continue
            try:
                entries = self.journal.peek(100)
                if entries:  # replay first, one XADD at a time; new alerts wait in memory meanwhile
                    for entry in entries:
                        self._xadd(entry.alert_json, entry.snapshot)
                        self.journal.ack(entry.seq)
                    continue
                try:
                    item = self.queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                try:
                    self._xadd(*item)
                except BaseException:
                    self.journal.append(*item)
                    raise
            except _DOWN:
                self.connected = False


def open_variant(variant: str, url: str, journal_dir: Path) -> MemoryPublisher | RedisAlertPublisher:
    if variant == "memory":
        return MemoryPublisher(url, journal_dir)
    return RedisAlertPublisher(url, journal_dir, socket_timeout_s=0.5, backoff_max_s=0.2)


# ----- throughput ------------------------------------------------------------------------------------------
def xlen(client: redis.Redis) -> int:
    return int(client.xlen(ALERTS_STREAM))


def run_throughput(
    variant: str, url: str, workdir: Path, alerts: list[Alert], snapshot: bytes
) -> dict[str, float]:
    client = redis.Redis.from_url(url, socket_timeout=30)
    client.flushall()
    costs: list[int] = []
    commits = 0
    started = time.perf_counter()
    if variant == "floor":
        for alert in alerts:
            t = time.perf_counter_ns()
            fields = {"alert": alert.model_dump_json().encode(), "snapshot": snapshot}
            client.xadd(ALERTS_STREAM, fields, maxlen=ALERTS_MAXLEN, approximate=True)  # type: ignore[arg-type]
            costs.append(time.perf_counter_ns() - t)
    else:
        pub = open_variant(variant, url, workdir / f"journal-{variant}-{time.monotonic_ns()}")
        try:
            for alert in alerts:
                t = time.perf_counter_ns()
                pub.publish(alert, snapshot)
                costs.append(time.perf_counter_ns() - t)
            wait(lambda: xlen(client) >= len(alerts), timeout=600)
            elapsed = time.perf_counter() - started
            if isinstance(pub, RedisAlertPublisher):
                commits = pub.journal.commits
        finally:
            pub.close()
    if variant == "floor":
        elapsed = time.perf_counter() - started
    assert xlen(client) == len(alerts), f"{variant}: {xlen(client)} of {len(alerts)} in the stream"
    client.close()
    costs.sort()
    return {
        "aps": len(alerts) / elapsed,
        "p50_us": costs[len(costs) // 2] / 1000,
        "p99_us": costs[int(len(costs) * 0.99)] / 1000,
        "commits": commits,
    }


# ----- kill -9 ---------------------------------------------------------------------------------------------
def child_main(args: argparse.Namespace) -> int:
    pub = open_variant(args.child, args.url, Path(args.journal))
    if args.drain:
        deadline = time.monotonic() + 120
        while not pub.drained and time.monotonic() < deadline:
            time.sleep(0.02)
        drained = pub.drained
        pub.close()
        return 0 if drained else 1
    snapshot = os.urandom(args.snapshot_kb * 1024)
    ids = HandoverLog(Path(args.ids))
    due, n = time.monotonic(), 0
    while True:
        alert = make_alert(n)
        pub.publish(alert, snapshot)
        ids.record(alert.id)  # only once publish() returned: the kernel keeps it
        n += 1
        due += 1.0 / KILL_RATE
        time.sleep(max(0.0, due - time.monotonic()))


def wait(condition, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark did not get where it should")
        time.sleep(0.005)


def kill_trial(
    variant: str, mode: str, server, workdir: Path, rng: random.Random, snapshot_kb: int
) -> dict[str, int]:  # noqa: ANN001
    client = redis.Redis.from_url(server.url, socket_timeout=30)
    client.flushall()
    journal, ids = (
        workdir / f"kill-{variant}-{mode}-{time.monotonic_ns()}",
        workdir / f"ids-{time.monotonic_ns()}",
    )
    base = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--url", server.url]
    base += ["--journal", str(journal), "--snapshot-kb", str(snapshot_kb)]
    child = subprocess.Popen([*base, "--ids", str(ids)], cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: len(handed_over(ids)) >= 500)
        if mode == "up":
            time.sleep(rng.uniform(0.1, 1.0))
        else:
            server.stop()
            time.sleep(1.0)
            server.start()
            client.close()
            client = redis.Redis.from_url(server.url, socket_timeout=30)
            at_restart = xlen(client)
            wait(lambda: xlen(client) > at_restart, timeout=30)  # the replay is under way
            time.sleep(rng.uniform(0.0, 0.05))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    drain = subprocess.run([*base, "--drain"], cwd=REPO, stderr=subprocess.DEVNULL, timeout=180, check=False)
    stream = [decode_alert_entry(fields)[0].id for _, fields in client.xrange(ALERTS_STREAM)]
    client.close()
    handed = handed_over(ids)
    return {
        "published": len(handed),
        "lost": len(set(handed) - set(stream)),
        "duplicated": len(stream) - len(set(stream)),
        "drain_failed": int(drain.returncode != 0),
    }


# ----- main ------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--snapshot-kb", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds (median shown)")
    parser.add_argument("--trials", type=int, default=5, help="kill -9 trials per variant and mode")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--child", choices=("memory", "wal"))
    parser.add_argument("--drain", action="store_true")
    parser.add_argument("--url")
    parser.add_argument("--journal")
    parser.add_argument("--ids")
    args = parser.parse_args()
    if args.child:
        return child_main(args)
    from tests.support.servers import RedisServer

    snapshot = os.urandom(args.snapshot_kb * 1024)
    alerts = [make_alert(n) for n in range(args.alerts)]
    rng = random.Random(args.seed)
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    kills: dict[str, list[dict[str, int]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="gw-bench-pub-") as tmp,
        RedisServer(databases=1, extra_args=["--appendonly", "yes"]) as server,
    ):
        workdir = Path(tmp)
        for r in range(max(1, args.rounds)):
            for variant in VARIANTS:
                result = run_throughput(variant, server.url, workdir, alerts, snapshot)
                runs[variant].append(result)
                print(f"round {r + 1}: {variant:<7} {result['aps']:>9.0f} alerts/s", flush=True)
        for mode in ("up", "replay"):
            for variant in ("memory", "wal"):
                key = f"{variant}_{mode}"
                kills[key] = [
                    kill_trial(variant, mode, server, workdir, rng, args.snapshot_kb)
                    for _ in range(args.trials)
                ]
                total = {k: sum(t[k] for t in kills[key]) for k in kills[key][0]}
                print(f"kill -9 {key:<13} lost {total['lost']} of {total['published']}", flush=True)
    med = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in runs.items()}
    print(
        f"\n{args.alerts} alerts with a {args.snapshot_kb} KB snapshot each, median of {args.rounds} rounds"
    )
    print(f"{'path':<8}{'alerts/s':>10}{'vs floor':>10}{'publish() p50':>15}{'p99':>10}{'fsyncs':>8}")
    for v in VARIANTS:
        m = med[v]
        print(
            f"{v:<8}{m['aps']:>10.0f}{m['aps'] / med['floor']['aps']:>9.2f}x"
            f"{m['p50_us']:>13.1f}us{m['p99_us']:>8.1f}us{int(m['commits']):>8}"
        )
    print(f"\n{'kill -9':<14}{'trials':>7}{'published':>11}{'lost':>7}{'duplicated':>12}")
    totals = {}
    for key, trials in kills.items():
        totals[key] = {k: sum(t[k] for t in trials) for k in trials[0]}
        t = totals[key]
        print(f"{key:<14}{len(trials):>7}{t['published']:>11}{t['lost']:>7}{t['duplicated']:>12}")
    summary: dict[str, object] = {
        "alerts": args.alerts,
        "snapshot_kb": args.snapshot_kb,
        "rounds": max(1, args.rounds),
        **{f"{v}_alerts_per_s": round(med[v]["aps"]) for v in VARIANTS},
        "wal_vs_memory": round(med["wal"]["aps"] / med["memory"]["aps"], 2),
        **{f"{v}_publish_p50_us": round(med[v]["p50_us"], 1) for v in VARIANTS},
        **{f"{v}_publish_p99_us": round(med[v]["p99_us"], 1) for v in VARIANTS},
        "wal_fsyncs": int(med["wal"]["commits"]),
        "kill_trials": args.trials,
        **{f"kill_{key}_lost": t["lost"] for key, t in totals.items()},
        **{f"kill_{key}_published": t["published"] for key, t in totals.items()},
        "kill_duplicated": sum(t["duplicated"] for t in totals.values()),
        "kill_drain_failed": sum(t["drain_failed"] for t in totals.values()),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
