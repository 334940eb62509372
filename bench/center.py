"""Benchmark of the monitoring center on the generated reference city and PostgreSQL.

  .venv/bin/python bench/center.py [--alerts 20000] [--incidents 1000000] [--feed-seconds 15]

1. Throughput: XADD `--alerts` alerts (random cameras of the 8,502) and time until the group has no lag and
   nothing pending: alerts per second through decode, locate, route, fold, commit, XACK and feed publish.
2. Feed latency: 200 alerts/s for `--feed-seconds` from one station's cameras; p50/p99 from XADD to receipt
   on that station's WebSocket.
3. Queries: with `--incidents` incidents stored (bulk COPY), p95 of `GET /api/v1/incidents?cell=...` and of
   the statistics query `GET /api/v1/stats/counts?by=community&since=<7 days>`.

The center runs as a separate process (uvicorn). Redis and PostgreSQL are private servers started for the run
(tests/support: PostgreSQL with fsync on, as deployed) and stopped at the end, unless GRIDWATCH_TEST_REDIS_URL
or GRIDWATCH_TEST_DATABASE_URL name others: then it uses one empty Redis DB and one database it creates and
drops. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECRET = "bench-secret-bench-secret-bench-secret"


def _serve(settings_json: str, port: int) -> None:
    import uvicorn

    from center_api.app import create_app
    from center_api.settings import CenterSettings

    settings = CenterSettings.model_validate_json(settings_json)
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _alert_entry(cam, *, zone: str | None = None, detail: str | None = None) -> dict:
    from contracts import Alert, AlertKind, encode_alert_entry

    alert = Alert(
        kind=AlertKind.intrusion,
        severity=random.choice((1, 2, 3)),
        camera_id=cam.id,
        captured_at=datetime.now(UTC),
        location=cam.location,
        rule=random.choice(("gate", "fence", "roof")),
        zone=zone,
        detail=detail,
    )
    return encode_alert_entry(alert)


async def _wait_drained(r, total_timeout: float) -> float:
    deadline = time.monotonic() + total_timeout
    while time.monotonic() < deadline:
        groups = {g["name"]: g for g in r.xinfo_groups("gw:alerts")}
        g = groups.get(b"center") or groups.get("center")
        if g and (g.get("lag") or 0) == 0 and g["pending"] == 0 and g.get("entries-read"):
            return time.monotonic()
        await asyncio.sleep(0.02)
    raise TimeoutError("the center did not drain the stream in time")


async def throughput(r, cameras, n: int) -> float:
    entries = [_alert_entry(random.choice(cameras)) for _ in range(n)]
    start = time.monotonic()
    pipe = r.pipeline(transaction=False)
    for i, e in enumerate(entries):
        pipe.xadd("gw:alerts", e)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    end = await _wait_drained(r, 600)
    return n / (end - start)


async def feed_latency(r, base_ws: str, cameras, station: str, seconds: float, rate: float) -> list[float]:
    import websockets

    from center_api.auth import issue_token

    mine = [c for c in cameras if c.station == station]
    tok = issue_token(SECRET, subject="bench", role="operator", station_id=station)
    latencies: list[float] = []
    stop = threading.Event()

    def sender() -> None:
        interval = 1.0 / rate
        t_next = time.time()
        while not stop.is_set():
            cam = random.choice(mine)
            r.xadd(
                "gw:alerts",
                _alert_entry(cam.camera, zone=uuid.uuid4().hex[:8], detail=f"t={time.time():.6f}"),
            )
            t_next += interval
            delay = t_next - time.time()
            if delay > 0:
                time.sleep(delay)

    async with websockets.connect(f"{base_ws}/api/v1/feed?token={tok}", max_queue=None) as ws:
        await asyncio.sleep(0.5)
        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=5)
                except TimeoutError:
                    continue
                now = time.time()
                msg = json.loads(raw)
                detail = msg["incident"].get("detail") or ""
                if msg["event"] == "created" and detail.startswith("t="):
                    latencies.append((now - float(detail[2:])) * 1000)
        finally:
            stop.set()
            thread.join(timeout=10)
    return latencies


def bulk_incident(i: int, line, now: datetime) -> dict[str, object]:
    """The columns of one closed (97 %) or new incident of the last 90 days; the others stay NULL."""
    first = now - timedelta(seconds=random.uniform(0, 90 * 86400))
    closed = random.random() < 0.97
    kinds = ("intrusion", "loitering", "crowd", "line_crossing", "tamper", "camera_offline")
    return {
        "alert_id": f"bulk-{i}",
        "kind": random.choice(kinds),
        "severity": random.randint(1, 4),
        "status": random.choice(("resolved", "false_alarm")) if closed else "new",
        "camera_id": f"cam-{i % 8502}",
        "cell_id": line.cell_id,
        "community_id": line.community_id,
        "street_id": line.street_id,
        "district_id": line.district_id,
        "station_id": line.station_id,
        "first_seen": first,
        "last_seen": first + timedelta(seconds=30),
        "count": 1,
        "objects": "[]",
        "created_at": first,
        "acknowledged_at": first + timedelta(seconds=60) if closed else None,
        "resolved_at": first + timedelta(seconds=600) if closed else None,
    }


async def load_incidents(pg_url: str, city, n: int) -> None:
    import asyncpg

    from center_api.store.rows import INSERT_COLUMNS  # every column but the id, from the model

    cells = sorted(city.lineage.values(), key=lambda line: line.cell_id)
    now = datetime.now(UTC)
    unknown = set(bulk_incident(0, cells[0], now)) - set(INSERT_COLUMNS)
    assert not unknown, f"not columns of incidents: {sorted(unknown)}"
    conn = await asyncpg.connect(pg_url)
    try:
        batch = 100_000
        for start in range(0, n, batch):
            rows = []
            for i in range(start, min(n, start + batch)):
                values = bulk_incident(i, random.choice(cells), now)
                rows.append(tuple(values.get(name) for name in INSERT_COLUMNS))
            await conn.copy_records_to_table("incidents", records=rows, columns=list(INSERT_COLUMNS))
        # COPY bypassed the writer: recompute the per-day rollup the statistics read, as after any bulk load.
        from center_api.store.rollup import rebuild_sql

        async with conn.transaction():
            await conn.execute("DELETE FROM incident_counts")
            await conn.execute(rebuild_sql("postgresql"))
        await conn.execute("VACUUM ANALYZE incidents")  # visibility map: index-only scans
        await conn.execute("VACUUM ANALYZE incident_counts")
    finally:
        await conn.close()


async def query_latency(client, city, n: int) -> tuple[list[float], list[float]]:
    from center_api.auth import issue_token

    headers = {
        "Authorization": f"Bearer {issue_token(SECRET, subject='b', role='city_command', station_id=None)}"
    }
    cells = sorted(city.lineage)
    q: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await client.get(
            "/api/v1/incidents", params={"cell": random.choice(cells), "limit": 50}, headers=headers
        )
        q.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200 and r.json()["items"], r.text[:200]
    s: list[float] = []
    since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    for _ in range(max(10, n // 4)):
        t0 = time.perf_counter()
        r = await client.get(
            "/api/v1/stats/counts", params={"by": "community", "since": since}, headers=headers
        )
        s.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text[:200]
    return q, s


async def main(args: argparse.Namespace, redis_url: str, database_url: str) -> dict:
    """`redis_url`: an empty DB; `database_url`: an empty database (SQLAlchemy's asyncpg URL)."""
    import httpx
    import redis
    import yaml

    from center_api.grid import CellLocator, generate_city, load_city
    from center_api.settings import CenterSettings
    from contracts import parse_cameras

    random.seed(1)
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-center-"))
    config_dir = REPO / "configs" / "xining"
    if not (config_dir / "grid.geojson").exists():
        generate_city(config_dir, seed=630100)
    city = load_city(config_dir)
    cams = parse_cameras(
        yaml.load((config_dir / "cameras.yaml").read_text(), Loader=yaml.CSafeLoader), "cameras"
    )
    locator = CellLocator(city)

    class Cam:
        def __init__(self, camera) -> None:
            self.camera, self.id, self.location = camera, camera.id, camera.location
            self.station = locator.locate(camera.location.lat, camera.location.lon).station_id

    cameras = [Cam(c) for c in cams]
    pg_url = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)  # asyncpg's own COPY
    r = redis.Redis.from_url(redis_url)
    settings = CenterSettings(
        redis_url=redis_url,
        database_url=database_url,
        config_dir=config_dir,
        data_dir=tmp,
        jwt_secret=SECRET,  # type: ignore[arg-type]
        consumer_name=f"bench-{socket.gethostname()}-{os.getpid()}",
        batch_size=args.batch,
    )
    port = _free_port()
    served = settings.model_dump(mode="json") | {"jwt_secret": SECRET}  # SecretStr dumps masked
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
        [sys.executable, __file__, "--serve", json.dumps(served), "--port", str(port)], cwd=REPO
    )
    result: dict = {}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(1200):
                try:
                    if (await client.get("/api/v1/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError("center process exited during start-up")
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("center did not start")
            await _wait_drained_empty(r)
            aps = await throughput(r, cameras, args.alerts)
            station = max(
                {c.station for c in cameras}, key=lambda s: sum(1 for c in cameras if c.station == s)
            )
            lat = await feed_latency(r, f"ws://127.0.0.1:{port}", cameras, station, args.feed_seconds, 200.0)
            await load_incidents(pg_url, city, args.incidents)
            q, s = await query_latency(client, city, args.queries)
        result = {
            "alerts_per_s": round(aps, 1),
            "feed_p50_ms": round(pct(lat, 0.5), 1),
            "feed_p99_ms": round(pct(lat, 0.99), 1),
            "query_p95_ms": round(pct(q, 0.95), 1),
            "stats_p95_ms": round(pct(s, 0.95), 1),
        }
        rows = [
            ("alerts through the center (sustained)", f"{aps:,.0f} alerts/s", f"{args.alerts:,} alerts"),
            (
                "feed latency p50, XADD -> station WebSocket",
                f"{pct(lat, 0.5):.1f} ms",
                f"{len(lat)} at 200/s",
            ),
            ("feed latency p99", f"{pct(lat, 0.99):.1f} ms", ""),
            ("GET /incidents?cell= p50", f"{statistics.median(q):.1f} ms", f"{args.incidents:,} incidents"),
            ("GET /incidents?cell= p95", f"{pct(q, 0.95):.1f} ms", f"{len(q)} requests"),
            ("GET /stats/counts?by=community&since=7d p50", f"{statistics.median(s):.1f} ms", ""),
            ("GET /stats/counts?by=community&since=7d p95", f"{pct(s, 0.95):.1f} ms", f"{len(s)} requests"),
        ]
        print(f"{'measure':48} {'value':>16}  note")
        for name, value, note in rows:
            print(f"{name:48} {value:>16}  {note}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        r.close()
    return result


async def _wait_drained_empty(r) -> None:
    # The center imports 8,502 cameras at first start; the stream is empty, the group exists.
    for _ in range(600):
        if r.exists("gw:alerts"):
            return
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--feed-seconds", type=float, default=15.0)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve:
        _serve(ns.serve, ns.port)
    else:
        from tests.support.pgdb import postgres_service
        from tests.support.redisdb import redis_service

        with (
            redis_service() as redis_dbs,
            redis_dbs.lease() as redis_url,
            postgres_service(durable=True) as postgres,
            postgres.database("gridwatch_bench_center") as database_url,
        ):
            print(json.dumps(asyncio.run(main(ns, redis_url, database_url))))
