"""Fixtures of the center tests: a Redis DB and throw-away databases of the suite's private servers (see
tests/conftest.py), a real uvicorn server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn

from center_api.app import create_app
from center_api.auth import issue_token
from center_api.settings import CenterSettings
from contracts import Alert, AlertKind, GeoPoint, encode_alert_entry
from tests.support.fixtures import entered_or_fail
from tests.support.pgdb import PostgresDatabases

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo"
# Settings of a test without a Redis DB (one that never starts the app) point here: nothing listens on 1.
NO_REDIS_URL = "redis://127.0.0.1:1/0"
_test_redis_urls: list[str] = []  # the `redis_db` of the running test, the default of make_settings
SECRET = "test-secret-of-sufficient-length-for-hs256"
METRICS_TOKEN = "test-scrape-token-of-the-platform"  # the centers of the tests serve /metrics with it
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}

# Points inside the demo cells (lat, lon).
NANGUAN_1 = (36.6135, 101.775)  # c-nanguan-01, st-nanguan
XIADU_2 = (36.62, 101.785)  # c-xiadu-02, st-xiadu


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[redis.Redis]:
    """A client on this test's own Redis DB (the `redis_url` fixture: empty now, flushed afterwards)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=10)
    _test_redis_urls.append(redis_url)
    try:
        yield client
    finally:
        _test_redis_urls.remove(redis_url)
        client.close()


def make_alert(point: tuple[float, float] | None = NANGUAN_1, **kw: object) -> Alert:
    fields: dict[str, object] = dict(
        kind=AlertKind.intrusion,
        severity=2,
        camera_id="cam-x",
        captured_at=datetime.now(UTC),
        rule="r1",
        zone="z1",
    )
    if point is not None:
        fields["location"] = GeoPoint(lat=point[0], lon=point[1])
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


def xadd(client: redis.Redis, alert: Alert, snapshot: bytes | None = None) -> bytes:
    return client.xadd("gw:alerts", encode_alert_entry(alert, snapshot))  # type: ignore[arg-type,return-value]


def token(role: str = "operator", station: str | None = "st-nanguan", sub: str = "alice") -> str:
    return issue_token(SECRET, subject=sub, role=role, station_id=station)


def auth(role: str = "operator", station: str | None = "st-nanguan", sub: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, station, sub)}"}


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _database(request, request.param, tmp_path)


def _database(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'center.db'}"
        return
    # Looked up only here, so that SQLite-only tests never start PostgreSQL.
    postgres: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with entered_or_fail(
        postgres.database("gridwatch_test_center"), "cannot create a PostgreSQL database: "
    ) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _database(request, request.param, tmp_path)


@pytest.fixture
def pg_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _database(request, "postgres", tmp_path)


def make_settings(
    tmp_path: Path, database_url: str, config_dir: Path = DEMO, redis_url: str | None = None, **kw: object
) -> CenterSettings:
    """Settings on the test's own Redis DB (its `redis_db`, unless `redis_url` names one)."""
    if redis_url is None:
        redis_url = _test_redis_urls[-1] if _test_redis_urls else NO_REDIS_URL
    return CenterSettings(
        redis_url=redis_url,
        database_url=database_url,
        config_dir=config_dir,
        data_dir=tmp_path / "data",
        jwt_secret=SECRET,  # type: ignore[arg-type]
        **{
            "consumer_name": f"test-{socket.gethostname()}-{os.getpid()}",
            "metrics_token": METRICS_TOKEN,
            **kw,
        },
    )  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningCenter:
    base: str
    ws_base: str
    client: httpx.AsyncClient
    app: object

    def ws_url(self, path: str = "/api/v1/feed", **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"{self.ws_base}{path}{'?' + q if q else ''}"


async def start_center(settings: CenterSettings) -> tuple[uvicorn.Server, asyncio.Task[None], RunningCenter]:
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="websockets-sansio"
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        if task.done():
            task.result()
            pytest.fail("center server exited during start-up")
        await asyncio.sleep(0.05)
    else:
        pytest.fail("center server did not start within 30 s")
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
    return server, task, RunningCenter(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", client, app)


async def stop_center(server: uvicorn.Server, task: asyncio.Task[None], running: RunningCenter) -> None:
    await running.client.aclose()
    server.should_exit = True
    await asyncio.wait_for(task, timeout=60)


@pytest.fixture
async def center_factory(redis_db: redis.Redis, tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    started: list[tuple[uvicorn.Server, asyncio.Task[None], RunningCenter]] = []

    async def start(database_url: str, **kw: object) -> RunningCenter:
        entry = await start_center(make_settings(tmp_path, database_url, **kw))
        started.append(entry)
        return entry[2]

    yield start
    for entry in reversed(started):
        await stop_center(*entry)


async def poll(fn: Callable[[], object], within_s: float = 60.0, interval: float = 0.1) -> object:
    """Call async `fn` until it returns something truthy; fail after `within_s` seconds."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        value = await fn()  # type: ignore[misc]
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {within_s} s (last value {value!r})")
        await asyncio.sleep(interval)


# -- Event clips (tests/center_api/test_clips*.py, the isolation walk) ------------------------------------

WORKER = auth("worker", None, "worker-1")


@pytest.fixture(scope="session")
def clip_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real H.264 MP4 (2 s, 640x360, a keyframe a second) made by the demo's clip maker."""
    from gridwatch.demo.clips import make_clip, quiet_scene

    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", quiet_scene(seconds=2.0)).read_bytes()


def mp4_variant(base: bytes, tag: str, pad: int = 0) -> bytes:
    """`base` with a top-level `free` box holding `tag` (and `pad` zero bytes) appended: still a valid MP4,
    of another digest and size."""
    payload = tag.encode() + bytes(pad)
    return base + struct.pack(">I", 8 + len(payload)) + b"free" + payload


def clip_meta(
    data: bytes,
    alert_ids: list[str],
    camera_id: str = "cam-x",
    offsets: list[float] | None = None,
    **kw: object,
) -> dict[str, object]:
    """The `contracts.ClipMeta` of an upload of `data` (JSON-ready)."""
    return {
        "camera_id": camera_id,
        "alert_ids": alert_ids,
        "alert_offsets_s": offsets if offsets is not None else [1.0] * len(alert_ids),
        "started_at": datetime.now(UTC).isoformat(),
        "duration_s": 2.0,
        "bytes": len(data),
        "codec": "h264",
        "width": 640,
        "height": 360,
        **kw,
    }


async def put_clip(
    client: httpx.AsyncClient,
    data: bytes,
    meta: dict[str, object],
    *,
    digest: str | None = None,
    headers: dict[str, str] = WORKER,
) -> httpx.Response:
    """PUT /api/v1/clips/{sha256} as a worker does."""
    return await client.put(
        f"/api/v1/clips/{digest or hashlib.sha256(data).hexdigest()}",
        params={"meta": json.dumps(meta)},
        content=data,
        headers={**headers, "Content-Type": "video/mp4"},
    )
