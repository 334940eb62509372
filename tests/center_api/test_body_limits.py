"""Request-body limits on a real server: a body over its route's limit is refused (413, its code, the limit
named) before it is read, whether its length is declared or it comes chunked, and everyone else is served
meanwhile; the camera import has its own limit. Alert snapshots over `snapshot_max_bytes` or not JPEG go
to the dead-letter stream, their alerts stored without them."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest

from tests.center_api.conftest import NANGUAN_1, auth, make_alert, poll, xadd

pytestmark = pytest.mark.integration

INT = auth("integrator", None, "vendor")
JSON = {**INT, "Content-Type": "application/json"}
LIMITS = dict(max_body_bytes=2048, import_max_bytes=16 * 1024)
CAMERA = {"id": "lim-1", "url": "rtsp://10.0.0.1/s", "location": {"lat": NANGUAN_1[0], "lon": NANGUAN_1[1]}}


class RawClient:
    """One HTTP/1.1 connection driven by hand: send a head and some of a body, then read the answer."""

    def __init__(self, base: str) -> None:
        self.host, self.port = urlsplit(base).hostname, urlsplit(base).port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def answer(self) -> tuple[int, dict]:
        """The status and JSON body; a server that waits for the rest of the body fails this (timeout)."""
        assert self.reader is not None
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30)
        lines = head.decode().split("\r\n")
        length = next(
            int(v) for k, _, v in (x.partition(": ") for x in lines[1:]) if k.lower() == "content-length"
        )
        body = await asyncio.wait_for(self.reader.readexactly(length), 30)
        return int(lines[0].split()[1]), json.loads(body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


ROUTES = [
    ("POST", "/api/v1/cameras"),
    ("PUT", "/api/v1/cameras/lim-1"),
    ("PATCH", "/api/v1/cameras/lim-1"),
    ("POST", "/api/v1/incidents/1/transitions"),
    ("POST", "/api/v1/cameras/lim-1/live"),
    ("POST", "/api/v1/no-such-route"),
]


async def test_a_declared_length_over_the_limit_is_refused_unread(center_factory, database_url) -> None:
    center = await center_factory(database_url, **LIMITS)
    for method, path in ROUTES:
        raw = RawClient(center.base)
        try:
            # a gigabyte announced, not a byte sent: the answer comes at once
            await raw.send(
                method, path, {**INT, "Content-Type": "application/json", "Content-Length": "1000000000"}
            )
            status, body = await raw.answer()
        finally:
            await raw.close()
        assert (status, body["code"]) == (413, "body_too_large"), (method, path, body)
        assert body["detail"] == "request body over the limit of 2048 bytes (max_body_bytes)"
    raw = RawClient(center.base)
    try:
        await raw.send("POST", "/api/v1/cameras/import", {**INT, "Content-Length": str(16 * 1024 + 1)})
        status, body = await raw.answer()
    finally:
        await raw.close()
    assert (status, body["code"]) == (413, "import_too_large") and "import_max_bytes" in body["detail"]


@pytest.mark.parametrize(
    ("path", "limit", "code"),
    [("/api/v1/cameras", 2048, "body_too_large"), ("/api/v1/cameras/import", 16 * 1024, "import_too_large")],
)
async def test_a_chunked_body_is_read_up_to_the_limit_only(
    center_factory, database_url, path, limit, code
) -> None:
    center = await center_factory(database_url, **LIMITS)
    raw = RawClient(center.base)
    try:
        await raw.send("POST", path, {**INT, "Content-Type": "text/csv", "Transfer-Encoding": "chunked"})
        for _ in range(limit // 1000 + 1):
            await raw.chunk(b"x" * 1000)  # one byte over the limit at most 1000 bytes in; no end is ever sent
        status, body = await raw.answer()
    finally:
        await raw.close()
    assert (status, body["code"]) == (413, code)
    assert str(limit) in body["detail"]


async def test_others_are_served_while_a_body_is_held_and_bodies_within_the_limit_pass(
    center_factory, database_url
) -> None:
    center = await center_factory(database_url, **LIMITS)
    c = center.client
    held = RawClient(center.base)
    try:
        # a client that starts a body within the limit and never finishes it
        await held.send("POST", "/api/v1/cameras", {**INT, "Transfer-Encoding": "chunked"})
        await held.chunk(b'{"id": "lim-')
        assert (await c.get("/api/v1/health")).status_code == 200
        assert (await c.post("/api/v1/cameras", json=CAMERA, headers=INT)).status_code == 201

        async def chunked():
            yield json.dumps({**CAMERA, "id": "lim-2"}).encode()

        assert (await c.post("/api/v1/cameras", content=chunked(), headers=JSON)).status_code == 201
        # the import takes more than the other routes: 10 kB of CSV
        csv = "id,url\n" + "".join(f"imp-{i},rtsp://10.0.0.{i}/stream-with-a-long-path\n" for i in range(200))
        assert 2048 < len(csv) < 16 * 1024
        imported = await c.post(
            "/api/v1/cameras/import", content=csv, headers={**INT, "Content-Type": "text/csv"}
        )
        assert imported.status_code == 200 and imported.json()["created"] == 200, imported.text
        too_big = await c.post("/api/v1/cameras", json={**CAMERA, "name": "n" * 3000}, headers=INT)
        assert (too_big.status_code, too_big.json()["code"]) == (413, "body_too_large")
    finally:
        await held.close()
    assert (await c.get("/api/v1/cameras/lim-2", headers=INT)).status_code == 200


async def test_the_center_answers_others_while_it_parses_a_large_import(center_factory, database_url) -> None:
    center = await center_factory(database_url)  # the default limits: 20,000 rows
    c = center.client
    rows = "".join(
        f"big-{i},rtsp://admin:pw{i}@10.0.{i // 250 % 250}.{i % 250}/s,36.61,101.77\n" for i in range(20_000)
    )
    body = "id,url,lat,lon\n" + rows
    headers = {**INT, "Content-Type": "text/csv"}
    parsing = asyncio.create_task(
        c.post("/api/v1/cameras/import", params={"dry_run": "true"}, content=body, headers=headers)
    )
    answered = 0
    while not parsing.done():
        assert (await c.get("/api/v1/health")).status_code == 200
        answered += not parsing.done()
    report = (await parsing).json()
    assert (report["total"], report["valid"]) == (20_000, 20_000)
    # a loop held by the import for its seconds of parsing would answer one or two at its end, not dozens
    assert answered >= 10, answered


JPEG = b"\xff\xd8\xff\xe0" + b"j" * 1500 + b"\xff\xd9"


async def test_a_snapshot_over_the_limit_or_not_jpeg_goes_to_the_dead_letters(
    center_factory, database_url, redis_db
) -> None:
    center = await center_factory(database_url, snapshot_max_bytes=1024)
    big, junk, small = (make_alert(NANGUAN_1, camera_id=f"snap-{i}") for i in range(3))
    xadd(redis_db, big, JPEG)  # 1,506 bytes
    xadd(redis_db, junk, b"GIF89a" + b"g" * 100)
    xadd(redis_db, small, JPEG[:500] + b"\xff\xd9")
    city = auth("city_command", None, "chief")

    async def stored():
        items = (await center.client.get("/api/v1/incidents", headers=city)).json()["items"]
        return {i["alert_id"]: i for i in items} if len(items) == 3 else None

    incidents = await poll(stored)
    snapshots = {}
    for alert in (big, junk, small):
        r = await center.client.get(f"/api/v1/incidents/{incidents[alert.id]['id']}/snapshot", headers=city)
        snapshots[alert.id] = r.status_code
    assert snapshots == {big.id: 404, junk.id: 404, small.id: 200}
    dead = {
        json.loads(f[b"alert"])["id"]: f[b"reason"].decode() for _, f in redis_db.xrange("gw:alerts:dead")
    }
    assert set(dead) == {big.id, junk.id}
    assert (
        dead[big.id]
        == "snapshot of 1506 bytes over snapshot_max_bytes (1024); the alert is stored without it"
    )
    assert dead[junk.id] == "snapshot is not a JPEG; the alert is stored without it"
    assert redis_db.xpending("gw:alerts", "center")["pending"] == 0
