"""Integration: the whole stack keeps its passwords to itself while everything around it fails.

Real processes on private servers: `gridwatch center` on a PostgreSQL whose user `gw_app` logs in with a
password (scram-sha-256 in pg_hba.conf) written into GRIDWATCH_DATABASE_URL, and `gridwatch ingest` reading
cameras whose URLs all carry a password (in the userinfo, percent-encoded or raw, and in the query string),
one of them a working stream. Then every kind of failure: a center started with a wrong database password,
cameras that cannot be reached, the database killed (SIGKILL) mid-run and restarted, Redis stopped and
restarted, and requests the API refuses. No log line, health record (gw:health:*, `gridwatch cameras
health`), metric (worker and center), alert (the gw:alerts stream, the dead letters, the stored incidents, the
city command's WebSocket feed), API response or error body may hold a password, the wrong one included, or a
user:password pair (a masked `user:***@` is fine).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from center_api.auth import issue_token
from contracts import health_key
from contracts.bus import ALERTS_STREAM
from gridwatch.demo.clips import Scene, Walker, make_clip
from tests.support.paths import model_path
from tests.support.rtsp import RtspServer, free_port
from tests.support.servers import PostgresServer, RedisServer, ServerError
from tests.support.stack import Process, gridwatch_args, intrusion_camera, wait_until, write_city

pytestmark = pytest.mark.integration

CAMERA_SECRET = "CamHunter2Secret"  # the distinctive core of each password: no form of it may appear
DB_SECRET = "DbHunter2Secret"
WRONG_SECRET = "WrongHunter2Secret"
SECRETS = (CAMERA_SECRET, DB_SECRET, WRONG_SECRET)
# a user:password pair, unless the password is masked (`gw_app:***@`); the bare user name is no secret
PAIR = re.compile(r"(?:admin|gw_app)(?::|%3A)(?!\*\*\*@)", re.IGNORECASE)
CAMERA_PASSWORD = f"{CAMERA_SECRET}/#?@"  # delimiters a URL parser trips on
DB_PASSWORD = f"{DB_SECRET}#?@/"
JWT = "secrets-stack-jwt-secret-0123456789abcdef"
SCRAPE_TOKEN = "secrets-stack-scrape-token-0123456789"


def db_url(port: int, password: str, database: str = "gw") -> str:
    return f"postgresql+asyncpg://gw_app:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


async def _admin(pg: PostgresServer, *statements: str) -> None:
    conn = await asyncpg.connect(pg.admin_url, timeout=30)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def _login(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"), timeout=10)
    await conn.close()


@pytest.fixture
def password_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL where `gw_app` (owner of database `gw`) needs its password over TCP."""
    pg = PostgresServer()
    try:
        pg.start()
        asyncio.run(
            _admin(
                pg,
                "CREATE ROLE gw_app LOGIN PASSWORD '" + DB_PASSWORD.replace("'", "''") + "'",
                "CREATE DATABASE gw OWNER gw_app",
            )
        )
        # First match wins: the suite's superuser keeps trust, everyone else gives a password over TCP.
        (pg.datadir / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        assert pg.proc is not None
        pg.proc.send_signal(1)  # SIGHUP: reload pg_hba.conf
        wrong = db_url(pg.port, WRONG_SECRET)
        wait_until(lambda: _refused(wrong), 30, "pg_hba.conf to ask for a password")
        asyncio.run(_login(db_url(pg.port, DB_PASSWORD)))
    except (ServerError, OSError) as exc:
        pg.close()
        pytest.fail(f"PostgreSQL could not be set up: {exc}")
    try:
        yield pg
    finally:
        pg.close()


def _refused(url: str) -> bool:
    try:
        asyncio.run(_login(url))
    except asyncpg.InvalidPasswordError:
        return True
    return False


class FeedListener:
    """Keeps every message of one WebSocket feed, on a thread."""

    def __init__(self, url: str) -> None:
        self.messages: list[str] = []
        self._ws = connect(url, open_timeout=10)
        self._thread = threading.Thread(target=self._run, name="feed-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for message in self._ws:
                self.messages.append(message if isinstance(message, str) else message.decode())
        except ConnectionClosed:
            pass

    def close(self) -> None:
        self._ws.close()
        self._thread.join(timeout=10)


class Seen:
    """Everything the stack showed, by where it was seen."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.incidents: list[int] = []  # the ids of the last incident list read

    def add(self, where: str, text: str | bytes) -> str:
        value = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        self.items.append((where, value))
        return value

    def request(self, client: httpx.Client, where: str, method: str, path: str, **kwargs: object) -> int:
        """Send one request; keep its body (or the transport error) and return its status (0: none)."""
        try:
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:  # e.g. the connection dropped after a 500
            self.add(f"{where}: {method} {path} -> {exc.__class__.__name__}", str(exc))
            return 0
        self.add(f"{where}: {method} {path} -> {response.status_code}", response.text)
        if response.status_code == 200 and path == "/api/v1/incidents":
            self.incidents = [item["id"] for item in response.json()["items"]]
        return response.status_code


def api_tour(
    seen: Seen, client: httpx.Client, when: str, city: dict[str, str], vendor: dict[str, str]
) -> None:
    """Read what the city command and an integrator can read, and make the API refuse bad requests."""
    seen.request(client, when, "GET", "/api/v1/health")
    seen.incidents = []
    seen.request(client, when, "GET", "/api/v1/incidents", headers=city)
    for incident_id in seen.incidents[:5]:
        seen.request(client, when, "GET", f"/api/v1/incidents/{incident_id}", headers=city)
    seen.request(client, when, "GET", "/api/v1/cameras", headers=vendor)
    for camera_id in ("cam-ok", "cam-refused", "cam-query", "cam-raw", "cam-missing"):
        seen.request(client, when, "GET", f"/api/v1/cameras/{camera_id}", headers=vendor)
    seen.request(client, when, "GET", "/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    bad_url = f"rtsp://admin:{quote(CAMERA_PASSWORD, safe='')}@127.0.0.1:1/x"
    json_type = {**vendor, "Content-Type": "application/json"}
    # refused bodies: a wrong type, a duplicate id, malformed JSON, a CSV with a bad row and a bad byte
    bodies = [
        {"id": "cam-bad", "name": "x", "url": bad_url, "sample_fps": "fast"},
        {"id": "cam-ok", "name": "x", "url": bad_url},
        {"id": "cam-nowhere", "name": "x", "url": bad_url, "cell_id": "no-such-cell"},
    ]
    for body in bodies:
        seen.request(client, when, "POST", "/api/v1/cameras", json=body, headers=vendor)
    seen.request(client, when, "PUT", "/api/v1/cameras/cam-ok", json=bodies[0], headers=vendor)
    seen.request(client, when, "POST", "/api/v1/cameras", content=f'{{"url": "{bad_url}"', headers=json_type)
    csv = f"id,name,url,lat,lon\ncam-csv,x,{bad_url},1000,0\n".encode() + b"cam-\xff,x,y,0,0\n"
    csv_type = {**vendor, "Content-Type": "text/csv"}
    seen.request(client, when, "POST", "/api/v1/cameras/import", content=csv, headers=csv_type)


def scan_redis(seen: Seen, client: redis.Redis, when: str, camera_ids: list[str]) -> None:
    for camera_id in camera_ids:
        seen.add(f"{when}: {health_key(camera_id)}", client.get(health_key(camera_id)) or b"")
    for key in client.scan_iter("gw:health:*"):
        seen.add(f"{when}: {key!r}", client.dump(key) or b"")
    for stream in (ALERTS_STREAM, "gw:alerts:dead"):
        for entry_id, fields in client.xrange(stream):
            seen.add(
                f"{when}: {stream} {entry_id!r}",
                json.dumps({k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}),
            )


def test_no_password_leaks_from_the_stack_under_failures(
    tmp_path: Path, password_postgres: PostgresServer
) -> None:
    pg = password_postgres
    seen = Seen()
    walk = Walker(path=((0.0, 0.10, 0.92), (3.0, 0.25, 0.92), (6.0, 0.74, 0.95), (20.0, 0.76, 0.95)))
    clip = make_clip(tmp_path / "walk.mp4", Scene(width=320, height=180, seconds=20.0, walkers=(walk,)))
    encoded = quote(CAMERA_PASSWORD, safe="")
    with RedisServer() as redis_server, RtspServer({"/cam": clip}) as rtsp:
        urls = {
            "cam-ok": f"rtsp://admin:{encoded}@127.0.0.1:{rtsp.port}/cam",
            "cam-refused": f"rtsp://admin:{encoded}@127.0.0.1:{free_port()}/live",
            "cam-query": f"http://127.0.0.1:{free_port()}/video.ts?user=admin&password={encoded}",
            "cam-raw": f"rtsp://admin:{CAMERA_PASSWORD}@127.0.0.1:{free_port()}/live",
        }
        for case, url in urls.items():  # the checks below mean something only if they would see it
            assert find_leaks([(case, url)]), case
        cameras = [intrusion_camera(case, url, lat=36.6135, lon=101.7850) for case, url in urls.items()]
        config_dir = write_city(tmp_path / "config", cameras)
        center_port, metrics_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDWATCH_")}
        env.update(
            GRIDWATCH_REDIS_URL=redis_server.db_url(0),
            GRIDWATCH_DATABASE_URL=db_url(pg.port, DB_PASSWORD),
            GRIDWATCH_CONFIG_DIR=str(config_dir),
            GRIDWATCH_DATA_DIR=str(tmp_path / "data"),
            GRIDWATCH_MODEL=str(model_path()),
            GRIDWATCH_JWT_SECRET=JWT,
            GRIDWATCH_METRICS_TOKEN=SCRAPE_TOKEN,
            GRIDWATCH_STREAM_KEEP_ACKED_S="86400",  # every alert of the run stays in the stream for the scan
        )
        assert find_leaks([("database URL", env["GRIDWATCH_DATABASE_URL"])])

        # 1. a wrong database password at start: the center refuses to start and says why
        wrong_env = dict(env, GRIDWATCH_DATABASE_URL=db_url(pg.port, WRONG_SECRET))
        refused = subprocess.run(
            gridwatch_args("center", "--port", str(free_port())),
            env=wrong_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = seen.add("center with a wrong database password", refused.stdout + refused.stderr)
        assert refused.returncode != 0, output[-2000:]
        assert "password authentication failed" in output, output[-2000:]

        city_token = issue_token(JWT, subject="chief", role="city_command", station_id=None)
        city = bearer(city_token)
        vendor = bearer(issue_token(JWT, subject="vendor", role="integrator", station_id=None))
        center = Process("center", gridwatch_args("center", "--port", str(center_port)), env, tmp_path)
        worker = Process(
            "ingest",
            gridwatch_args(
                "ingest", "--cameras", str(config_dir / "cameras.yaml"), "--metrics-port", str(metrics_port)
            ),
            env,
            tmp_path,
        )
        processes = [center, worker]
        feed: FeedListener | None = None
        client = httpx.Client(base_url=f"http://127.0.0.1:{center_port}", timeout=30)
        bus = redis.Redis.from_url(redis_server.db_url(0), socket_timeout=10)
        try:
            wait_until(lambda: _status(client, "/api/v1/health") == 200, 120, "the center", processes)
            feed = FeedListener(f"ws://127.0.0.1:{center_port}/api/v1/feed?token={city_token}")

            # 2. unreachable cameras: offline alerts reach the incidents, health says why
            def offline_incidents() -> int:
                response = client.get("/api/v1/incidents", params={"kind": "camera_offline"}, headers=city)
                return len(response.json()["items"]) if response.status_code == 200 else 0

            wait_until(lambda: offline_incidents() >= 3, 120, "three camera_offline incidents", processes)
            wait_until(
                lambda: all(bus.exists(health_key(c)) for c in urls), 30, "every camera's health", processes
            )
            seen.add("worker metrics", httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text)
            scan_redis(seen, bus, "running", list(urls))
            api_tour(seen, client, "running", city, vendor)

            # 3. the database killed mid-run, alerts arriving meanwhile, then restarted
            pg.kill()
            simulate = subprocess.run(
                gridwatch_args("simulate", "--count", "20", "--rate", "50", "--seed", "3"),
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            seen.add("simulate", simulate.stdout + simulate.stderr)
            wait_until(
                lambda: _status(client, "/api/v1/incidents", headers=city) >= 500,
                60,
                "the API to notice the database is gone",
                processes,
            )
            api_tour(seen, client, "database down", city, vendor)
            pg.start()
            wait_until(
                lambda: _status(client, "/api/v1/incidents", headers=city) == 200,
                120,
                "the API to recover the database",
                processes,
            )

            # 4. Redis stopped, then restarted (empty: no persistence)
            redis_server.stop()
            time.sleep(5)  # the worker's health writes and publishes, the center's consumer: all fail now
            api_tour(seen, client, "redis down", city, vendor)
            redis_server.start()
            wait_until(
                lambda: all(bus.exists(health_key(c)) for c in urls),
                60,
                "health after Redis is back",
                processes,
            )
            time.sleep(3)
            seen.add(
                "worker metrics after", httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            )
            scan_redis(seen, bus, "after", list(urls))
            api_tour(seen, client, "after", city, vendor)
            table = subprocess.run(
                gridwatch_args("cameras", "health"), env=env, capture_output=True, text=True, timeout=60
            )
            assert "cam-refused" in seen.add("gridwatch cameras health", table.stdout + table.stderr)
            assert center.alive(), center.log_tail()
            assert worker.alive(), worker.log_tail()
        finally:
            if feed is not None:
                feed.close()
                seen.add("the city command's feed", "\n".join(feed.messages))
            client.close()
            bus.close()
            for process in processes:
                process.stop()
        for process in processes:
            seen.add(f"{process.name} log", process.log_path.read_bytes())

    leaks = find_leaks(seen.items)
    assert not leaks, "\n".join(leaks[:20])
    logs = "\n".join(text for where, text in seen.items if where.endswith(" log"))
    assert "rtsp://***@127.0.0.1" in logs and "password=***" in logs  # the logs do name the streams, redacted
    for name in ("center log", "ingest log"):  # and they did see the outages
        assert "Connection refused" in dict(seen.items)[name], name
    assert len(seen.items) > 60  # the tour did see the stack
    assert "camera_offline" in dict(seen.items)["the city command's feed"]


def find_leaks(items: list[tuple[str, str]]) -> list[str]:
    """'where: what ...context...' for each password or user:password pair in the texts."""
    leaks = []
    for where, text in items:
        found = [(text.find(secret), secret) for secret in SECRETS if secret in text]
        found += [(m.start(), m.group()) for m in PAIR.finditer(text)]
        for at, what in found:
            leaks.append(f"{where}: {what!r} in ...{text[max(0, at - 200) : at + 80]!r}")
    return leaks


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _status(client: httpx.Client, path: str, **kwargs: object) -> int:
    try:
        return client.get(path, **kwargs).status_code  # type: ignore[arg-type]
    except httpx.HTTPError:
        return 0
