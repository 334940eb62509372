"""Soak: the whole stack for a long while, sampled every 10 s; fails when something keeps growing.

  .venv/bin/python bench/soak.py [--minutes 30] [--warmup-minutes 5] [--cameras 3] [--rate 5]

The stack, all real processes on private servers (tests/support: Redis, and PostgreSQL with fsync on):
- a GStreamer RTSP server with `--cameras` streams of a real person walking into a zone (the demo clip,
  looped for the whole run), read by one worker (`gridwatch ingest`) that detects with the shared model
  (../shared/models/yolov8n_fp32.onnx, or GRIDWATCH_MODEL);
- two center replicas (`gridwatch center`) sharing the consumer group and the database;
- `gridwatch simulate` pushing `--rate` alerts per second with snapshots from the same cameras;
- four feed clients (per replica, one WebSocket and one SSE) that reconnect when dropped.

Every `--interval` seconds it samples each process's RSS, open files and threads (psutil), Redis's
used_memory and the database's size. After the warm-up it fits a least-squares line to each series and
prints its slope per hour. A series KEEPS GROWING, and the run fails (exit 1), when both hold:
- its fitted growth over the measured window is more than max(5 % of its median, a floor: 8 MiB for
  memory, 4 for open files and threads), and
- it is still rising at the end: the mean of the last third of the samples is above the mean of the middle
  third by more than half of that allowance (a step that levelled off is not a leak).
Data that grows by design is judged per item: the alert stream is capped (MAXLEN ~1,000,000 entries) and the
database keeps every alert, so Redis is judged on used_memory beyond the alert stream and on the stream's
bytes per entry, and the database on its bytes per stored alert; their raw slopes are printed too. The RTSP
server and the servers are load, printed but not judged. A process that dies also fails the run.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.pgdb import postgres_service  # noqa: E402
from tests.support.rtsp import RtspServer, free_port  # noqa: E402
from tests.support.servers import RedisServer  # noqa: E402
from tests.support.stack import Process, api_get, gridwatch_args, intrusion_camera, write_city  # noqa: E402

SECRET = "soak-secret-soak-secret-soak-secret-soak"
SHARED_MODEL = REPO.parent / "shared" / "models" / "yolov8n_fp32.onnx"
MIB = 1024 * 1024
# (lat, lon) inside the demo city's cells: two of st-nanguan's, one of st-xiadu's, in turn
PLACES = [(36.6135, 101.7850), (36.6210, 101.7750), (36.6120, 101.7830)]


# --- feed clients


@dataclass
class FeedClient:
    """One station's feed on one replica (WebSocket or SSE), reconnecting until stopped."""

    name: str
    url: str
    sse: bool
    token: str
    messages: int = 0
    connects: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self._sse() if self.sse else self._ws()
            except Exception:  # noqa: BLE001 - any drop: reconnect (counted)
                pass
            self.stop.wait(1.0)

    def _ws(self) -> None:
        from websockets.sync.client import connect

        with connect(f"{self.url}?token={self.token}", open_timeout=10) as ws:
            self.connects += 1
            while not self.stop.is_set():
                try:
                    ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
                self.messages += 1

    def _sse(self) -> None:
        request = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            self.connects += 1
            while not self.stop.is_set():
                line = response.readline()
                if not line:
                    return
                if line.startswith(b"data:"):
                    self.messages += 1


# --- sampling


@dataclass
class Series:
    name: str
    unit: str
    judged: bool
    floor: float  # the growth allowance's floor, in the series' unit
    points: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, value)


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    ts = [t / 3600 for t, _ in points]
    vs = [v for _, v in points]
    mt, mv = statistics.fmean(ts), statistics.fmean(vs)
    den = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (v - mv) for t, v in zip(ts, vs, strict=True)) / den if den else 0.0


def verdict(series: Series, after_s: float) -> tuple[float, bool, str]:
    """(slope per hour, keeps growing, why) over the samples taken after `after_s`."""
    pts = [p for p in series.points if p[0] >= after_s and not math.isnan(p[1])]
    if len(pts) < 6:
        return float("nan"), False, "too few samples"
    slope = slope_per_hour(pts)
    window_h = (pts[-1][0] - pts[0][0]) / 3600
    allowance = max(0.05 * abs(statistics.median(v for _, v in pts)), series.floor)
    third = len(pts) // 3
    middle = statistics.fmean(v for _, v in pts[third : 2 * third])
    last = statistics.fmean(v for _, v in pts[2 * third :])
    grew, rising = slope * window_h > allowance, last - middle > allowance / 2
    why = f"fit +{slope * window_h:.3g} vs allowance {allowance:.3g}; last third {last - middle:+.3g}"
    return slope, grew and rising, why


class Sampler:
    def __init__(self, processes: dict[str, Process], judged: set[str], redis_url: str, db_url: str) -> None:
        import redis

        self.processes = processes
        self.judged = judged
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=10)
        self.db_url = db_url
        self.series: dict[str, Series] = {}
        self.t0 = time.monotonic()
        self.died: list[str] = []

    def _put(self, name: str, unit: str, judged: bool, floor: float, value: float) -> None:
        s = self.series.setdefault(name, Series(name, unit, judged, floor))
        s.points.append((time.monotonic() - self.t0, value))

    def _process(self, name: str, pid: int) -> None:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                rss, fds, threads = proc.memory_info().rss / MIB, proc.num_fds(), proc.num_threads()
        except psutil.Error:
            return
        judged = name in self.judged
        self._put(f"{name} RSS", "MiB", judged, 8.0, rss)
        self._put(f"{name} open files", "", judged, 4.0, fds)
        self._put(f"{name} threads", "", judged, 4.0, threads)

    def sample(self, extra_pids: dict[str, int]) -> None:
        from contracts.bus import ALERTS_STREAM

        for name, process in self.processes.items():
            if not process.alive():
                if name not in self.died:
                    self.died.append(name)
                continue
            self._process(name, process.proc.pid)
        for name, pid in extra_pids.items():
            self._process(name, pid)
        used = float(self.redis.info("memory")["used_memory"]) / MIB
        entries = int(self.redis.xlen(ALERTS_STREAM))
        stream = float(self.redis.memory_usage(ALERTS_STREAM, samples=0) or 0) / MIB
        self._put("redis used_memory", "MiB", False, 0.0, used)
        self._put("redis beyond the alert stream", "MiB", True, 4.0, used - stream)
        self._put("alert stream entries", "", False, 0.0, entries)
        self._put(
            "alert stream bytes per entry", "B", True, 64.0, stream * MIB / entries if entries else math.nan
        )
        size, stored = db_size(self.db_url)
        self._put("database size", "MiB", False, 0.0, size / MIB)
        self._put("alerts stored", "", False, 0.0, stored)
        self._put("database bytes per stored alert", "B", True, 256.0, size / stored if stored else math.nan)


def db_size(url: str) -> tuple[float, int]:
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    async def query() -> tuple[float, int]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"), timeout=10)
        try:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            stored = await conn.fetchval("SELECT count(*) FROM incident_alerts")
            return float(size), int(stored)
        finally:
            await conn.close()

    try:
        return asyncio.run(query())
    except Exception:  # noqa: BLE001 - not migrated yet, or busy: a gap in the series
        return math.nan, 0


# --- the run


def soak_clip(work: Path, minutes: float) -> Path:
    from gridwatch.demo.clips import demo_scene, loop_clip, make_clip

    short = make_clip(work / "walk-1min.mp4", demo_scene(60.0))
    return loop_clip(short, work / "walk-long.mp4", times=int(minutes) + 3)


def wait_for(check: Callable[[], bool], timeout: float, what: str, processes: list[Process]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for p in processes:
            if not p.alive():
                raise RuntimeError(f"{p.name} died while waiting for {what}\n{p.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument("--warmup-minutes", type=float, help="not judged (default: a third, at most 5)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--cameras", type=int, default=3, help="RTSP cameras the worker reads")
    parser.add_argument("--rate", type=float, default=5.0, help="simulated alerts per second")
    parser.add_argument("--keep", type=Path, help="copy the processes' logs here")
    args = parser.parse_args()
    warmup = args.warmup_minutes if args.warmup_minutes is not None else min(5.0, args.minutes / 3)
    model = Path(os.environ.get("GRIDWATCH_MODEL", SHARED_MODEL))
    if not model.is_file():
        print(f"no detector model at {model} (set GRIDWATCH_MODEL)", file=sys.stderr)
        return 2

    from center_api.auth import issue_token

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gridwatch-soak-")))
        print(
            f"soak: {args.minutes:g} min (warm-up {warmup:g}), {args.cameras} cameras, {args.rate:g} alerts/s"
        )
        clip = soak_clip(work, args.minutes)
        redis_server = stack.enter_context(RedisServer())
        pg = stack.enter_context(postgres_service(durable=True))
        db_url = stack.enter_context(pg.database("gridwatch_soak"))
        rtsp = stack.enter_context(RtspServer({f"/cam{i}": clip for i in range(args.cameras)}))
        cameras = []
        for i in range(args.cameras):
            lat, lon = PLACES[i % len(PLACES)]
            cameras.append(intrusion_camera(f"soak-cam-{i}", rtsp.url(f"/cam{i}"), lat, lon))
        config_dir = write_city(work / "config", cameras)
        env = dict(
            os.environ,
            GRIDWATCH_REDIS_URL=redis_server.db_url(0),
            GRIDWATCH_DATABASE_URL=db_url,
            GRIDWATCH_CONFIG_DIR=str(config_dir),
            GRIDWATCH_DATA_DIR=str(work / "data"),
            GRIDWATCH_MODEL=str(model),
            GRIDWATCH_JWT_SECRET=SECRET,
            GRIDWATCH_CLAIM_IDLE_MS="30000",
        )
        ports = {"center-a": free_port(), "center-b": free_port()}
        procs: dict[str, Process] = {}

        def spawn(name: str, args_: list[str], **extra: str) -> Process:
            procs[name] = Process(name, gridwatch_args(*args_), dict(env, **extra), work)
            stack.callback(procs[name].stop)
            return procs[name]

        for name, port in ports.items():
            spawn(name, ["center", "--port", str(port)], GRIDWATCH_CONSUMER_NAME=name)

        def ready(port: int) -> Callable[[], bool]:
            return lambda: api_get(f"http://127.0.0.1:{port}/api/v1/health", "")[0] == 200

        for name, port in ports.items():
            wait_for(ready(port), 180, f"{name} ready", list(procs.values()))
        spawn(
            "ingest", ["ingest", "--cameras", str(config_dir / "cameras.yaml"), "--worker-id", "soak-worker"]
        )
        total = int(args.rate * args.minutes * 60) + 1000
        spawn("simulate", ["simulate", "--rate", str(args.rate), "--count", str(total), "--seed", "11"])
        tokens = {
            "st-nanguan": issue_token(SECRET, subject="soak-a", role="operator", station_id="st-nanguan"),
            "st-xiadu": issue_token(SECRET, subject="soak-b", role="operator", station_id="st-xiadu"),
        }
        clients = []
        for name, port in ports.items():
            base = f"127.0.0.1:{port}/api/v1/feed"
            clients += [
                FeedClient(f"{name} ws", f"ws://{base}", False, tokens["st-nanguan"]),
                FeedClient(f"{name} sse", f"http://{base}/sse", True, tokens["st-xiadu"]),
            ]
        for client in clients:
            client.start()
            stack.callback(client.stop.set)

        sampler = Sampler(
            procs, {"center-a", "center-b", "ingest", "simulate"}, redis_server.db_url(0), db_url
        )
        servers = {"rtsp server": rtsp.proc.pid if rtsp.proc else 0}
        servers["redis server"] = redis_server.proc.pid if redis_server.proc else 0
        end = sampler.t0 + args.minutes * 60
        next_print = sampler.t0
        while time.monotonic() < end:
            started = time.monotonic()
            sampler.sample(servers)
            if started >= next_print:
                rss = {
                    n: s.points[-1][1] for n, s in sampler.series.items() if n.endswith("RSS") and s.points
                }
                elapsed = (started - sampler.t0) / 60
                stored = sampler.series["alerts stored"].points[-1][1]
                print(
                    f"  {elapsed:5.1f} min: stored {stored:.0f}, "
                    + ", ".join(f"{n.removesuffix(' RSS')} {v:.0f} MiB" for n, v in rss.items()),
                    flush=True,
                )
                next_print = started + 60
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
        died = list(sampler.died)
        feed_stats = {c.name: {"messages": c.messages, "connects": c.connects} for c in clients}
        for client in clients:
            client.stop.set()
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for p in procs.values():
                (args.keep / p.log_path.name).write_bytes(p.log_path.read_bytes())
        logs = {name: p.log_tail(20) for name, p in procs.items() if name in died}

    after_s = warmup * 60
    rows, growing, slopes = [], [], {}
    for s in sampler.series.values():
        slope, bad, why = verdict(s, after_s)
        pts = [v for t, v in s.points if t >= after_s and not math.isnan(v)]
        slopes[s.name] = None if math.isnan(slope) else round(slope, 3)
        if s.judged and bad:
            growing.append(s.name)
        state = ("GROWING" if bad else "flat") if s.judged else "(not judged)"
        first, last = (f"{pts[0]:.1f}", f"{pts[-1]:.1f}") if pts else ("-", "-")
        rows.append((s.name, s.unit, first, last, f"{slope:+.2f}", state, why if s.judged else ""))
    head = ("series", "unit", "first", "last", "slope/h", "verdict", "how judged")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print(f"\nafter a {warmup:g}-minute warm-up, {args.minutes - warmup:g} minutes judged:")
    for row in [head, *rows]:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(
        "feeds: "
        + ", ".join(f"{n} {v['messages']} messages / {v['connects']} connects" for n, v in feed_stats.items())
    )
    for name in died:
        print(f"DIED: {name}\n{logs[name]}")
    ok = not growing and not died
    print(
        json.dumps(
            {
                "bench": "soak",
                "minutes": args.minutes,
                "warmup_minutes": warmup,
                "ok": ok,
                "growing": growing,
                "died": died,
                "slopes_per_h": slopes,
                "feeds": feed_stats,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
