"""The clip uploader against a real HTTP server (a small recording one here; the real center in
tests/gridwatch/test_clip_wiring.py): what it sends, and what it does with each answer, an outage, a refused
token and a worker killed with SIGKILL while it spooled."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from contracts import ClipFailure, ClipMeta
from ingest.spool import ClipSpool
from ingest.uploader import ClipCollector, ClipUploader
from tests.center_api.conftest import (  # noqa: F401 - fixtures are found by name
    auth,
    center_factory,
    clip_mp4,
    database_url,
    make_alert,
    poll,
    redis_db,
    xadd,
)
from tests.ingest.test_spool import REPO, add, make_meta, stage
from tests.support.fixtures import kill_after_lines

TOKEN = "worker-token-that-must-never-be-logged"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class FakeCenter:
    """A real HTTP server that records every request and answers from a script (then 201, or 200 for a
    digest it already stored), like the center's clip routes."""

    def __init__(self, port: int = 0) -> None:
        self.seen: list[Seen] = []
        self.stored: dict[str, bytes] = {}
        self.script: deque[tuple[int, str]] = deque()
        self._lock = threading.Lock()
        center = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                url = urlsplit(self.path)
                with center._lock:
                    center.seen.append(
                        Seen(self.command, url.path, parse_qs(url.query), dict(self.headers.items()), body)
                    )
                    status, code = center.script.popleft() if center.script else (0, "")
                    digest = url.path.rsplit("/", 1)[-1]
                    if status == 0:
                        status = 200 if digest in center.stored else 201
                    if status in (200, 201) and self.command == "PUT":
                        center.stored[digest] = body
                payload = json.dumps({"detail": "scripted", "code": code or "ok"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_PUT = do_POST = _answer  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def puts(self) -> Counter[str]:
        with self._lock:
            return Counter(s.path.rsplit("/", 1)[-1] for s in self.seen if s.method == "PUT")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


@pytest.fixture
def center() -> Iterator[FakeCenter]:
    server = FakeCenter()
    yield server
    server.close()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[ClipSpool]:
    s = ClipSpool(tmp_path / "spool")
    yield s
    s.close()


@pytest.fixture
def uploader_factory(spool: ClipSpool) -> Iterator[Callable[..., ClipUploader]]:
    started: list[ClipUploader] = []

    def make(url: str, **kw: object) -> ClipUploader:
        options: dict[str, object] = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "auth_retry_s": 0.05}
        options.update(kw)
        uploader = ClipUploader(spool, url, TOKEN, idle_poll_s=0.05, **options)  # type: ignore[arg-type]
        uploader.start()
        started.append(uploader)
        return uploader

    yield make
    for uploader in started:
        uploader.stop()


def wait_for(condition: Callable[[], object], what: str, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within_s} s: {what}")
        time.sleep(0.01)


def reserved_port() -> socket.socket:
    """A socket bound to a free port and not listening: connecting to it is refused until it is closed."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_a_clip_and_a_failure_reach_the_center_as_the_contract_says(
    spool: ClipSpool, center: FakeCenter, uploader_factory: Callable[..., ClipUploader]
) -> None:
    content = os.urandom(700_000)
    digest = add(spool, content)
    failure = ClipFailure(
        camera_id="cam-1", alert_ids=("a9",), reason="the camera went offline", worker_id="w1"
    )
    spool.add_failure(failure)
    uploader = uploader_factory(center.url + "/")
    wait_for(lambda: len(spool) == 0, "the spool empties")
    put, post = center.seen
    assert (put.method, put.path) == ("PUT", f"/api/v1/clips/{digest}")
    assert ClipMeta.model_validate_json(put.query["meta"][0]) == make_meta(len(content))
    assert put.body == content
    assert put.headers["Content-Type"] == "video/mp4"
    assert put.headers["Content-Length"] == str(len(content))
    assert put.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (post.method, post.path) == ("POST", "/api/v1/clips/failures")
    assert ClipFailure.model_validate_json(post.body) == failure
    assert post.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (uploader.counts.uploaded, uploader.counts.failures_reported, uploader.counts.retries) == (1, 1, 0)


def test_a_clip_the_center_already_has_is_a_duplicate(
    spool: ClipSpool, center: FakeCenter, uploader_factory: Callable[..., ClipUploader]
) -> None:
    content = os.urandom(1000)
    center.stored[hashlib.sha256(content).hexdigest()] = content
    add(spool, content)
    uploader = uploader_factory(center.url)
    wait_for(lambda: len(spool) == 0, "the spool empties")
    assert (uploader.counts.uploaded, uploader.counts.duplicates) == (0, 1)


def test_center_down_the_clip_arrives_once_after_it_returns(
    spool: ClipSpool, uploader_factory: Callable[..., ClipUploader], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingest.uploader")
    sock = reserved_port()
    port = sock.getsockname()[1]
    digests = [add(spool, os.urandom(5000), f"a{i}") for i in range(3)]
    uploader = uploader_factory(f"http://127.0.0.1:{port}")
    wait_for(lambda: uploader.counts.retries >= 5, "several refused attempts")
    assert len(spool) == 3  # nothing is lost while the center is away
    sock.close()
    center = FakeCenter(port)
    try:
        wait_for(lambda: len(spool) == 0, "the spool empties once the center is back")
        assert center.puts() == Counter({d: 1 for d in digests})
        assert [s.path.rsplit("/", 1)[-1] for s in center.seen] == digests  # oldest first
    finally:
        center.close()
    assert uploader.counts.uploaded == 3
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert sum(level == logging.WARNING and "unreachable" in m for level, m in lines) == 1  # per state change
    assert sum("takes clips again" in m for _, m in lines) == 1


def test_server_errors_are_retried_and_the_clip_is_stored_once(
    spool: ClipSpool, center: FakeCenter, uploader_factory: Callable[..., ClipUploader]
) -> None:
    center.script.extend([(503, "store_unavailable"), (500, "internal_error"), (429, "too_many_requests")])
    digest = add(spool, os.urandom(3000))
    uploader = uploader_factory(center.url)
    wait_for(lambda: len(spool) == 0, "the spool empties")
    assert center.puts() == Counter({digest: 4})
    assert list(center.stored) == [digest]
    assert (uploader.counts.retries, uploader.counts.uploaded) == (3, 1)


@pytest.mark.parametrize(
    ("status", "code"),
    [(507, "station_quota_exceeded"), (400, "bad_request"), (413, "body_too_large"), (422, "unprocessable")],
)
def test_a_final_refusal_removes_the_clip_counts_and_logs_the_code(
    spool: ClipSpool,
    center: FakeCenter,
    uploader_factory: Callable[..., ClipUploader],
    caplog: pytest.LogCaptureFixture,
    status: int,
    code: str,
) -> None:
    center.script.append((status, code))
    refused = add(spool, os.urandom(3000), "a1")
    taken = add(spool, os.urandom(3000), "a2")
    uploader = uploader_factory(center.url)
    wait_for(lambda: len(spool) == 0, "the spool empties")
    assert center.puts() == Counter({refused: 1, taken: 1})
    assert (uploader.counts.failed_final, uploader.counts.uploaded, uploader.counts.retries) == (1, 1, 0)
    assert [r.getMessage() for r in caplog.records if refused in r.getMessage() and code in r.getMessage()]


def test_a_refused_token_keeps_the_clips_and_never_logs_the_token(
    spool: ClipSpool,
    center: FakeCenter,
    uploader_factory: Callable[..., ClipUploader],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    center.script.extend([(401, "unauthorized"), (403, "forbidden"), (401, "unauthorized")])
    digest = add(spool, os.urandom(3000))
    uploader = uploader_factory(center.url)
    wait_for(lambda: len(spool) == 0, "the spool empties once the token is taken")
    assert center.puts() == Counter({digest: 4})
    assert (uploader.counts.auth_refused, uploader.counts.uploaded, uploader.counts.failed_final) == (3, 1, 0)
    refusals = [r for r in caplog.records if "refuses the worker token" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.ERROR
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(uploader.__dict__)


class _Ceiling(random.Random):
    """Full jitter's upper end, to see the cap grow."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_is_capped_exponential_with_full_jitter(spool: ClipSpool) -> None:
    high = ClipUploader(
        spool, "http://127.0.0.1:1", TOKEN, backoff_initial_s=1, backoff_max_s=30, rng=_Ceiling()
    )
    assert [high._retry_later() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    jitter = ClipUploader(spool, "http://127.0.0.1:1", TOKEN, backoff_initial_s=1, backoff_max_s=30)
    delays = [jitter._retry_later() for _ in range(200)]
    assert all(0 <= d <= 30 for d in delays) and len(set(delays)) == 200


def test_metrics_show_the_spool_and_the_uploads(
    spool: ClipSpool, center: FakeCenter, uploader_factory: Callable[..., ClipUploader]
) -> None:
    add(spool, os.urandom(1000))
    uploader = uploader_factory(center.url)
    wait_for(lambda: uploader.counts.uploaded == 1, "the upload")
    add(spool, os.urandom(2000), "a2")  # no center answers it before the scrape: stopped
    uploader.stop()
    values = {
        family.name: family.samples[0].value for family in ClipCollector(spool, uploader, "w1").collect()
    }
    assert values["gridwatch_clip_spool_files"] in (0, 1)
    assert values["gridwatch_clip_upload_uploaded"] in (1, 2)
    assert "gridwatch_clip_spool_oldest_age_seconds" in values
    assert "gridwatch_clip_spool_dropped_clips" in values


def _child_spools(directory: str, url: str) -> None:
    """A worker's clip side in a child process: spool clips (the center is down), print each digest once
    `add` returned, until it is killed."""
    spool = ClipSpool(Path(directory))
    uploader = ClipUploader(spool, url, TOKEN, backoff_initial_s=0.01, backoff_max_s=0.05)
    uploader.start()
    n = 0
    while True:
        n += 1
        content = hashlib.sha256(str(n).encode()).digest() * 20_000
        print(spool.add(stage(spool, content), make_meta(len(content), alert_id=f"a{n}")), flush=True)


def test_a_worker_killed_with_sigkill_while_spooling_uploads_each_clip_once_after_restart(
    tmp_path: Path,
) -> None:
    sock = reserved_port()
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    directory = tmp_path / "spool"
    code = f"from tests.ingest.test_uploader import _child_spools; _child_spools({str(directory)!r}, {url!r})"
    acknowledged = kill_after_lines(code, 4, REPO)
    sock.close()
    center = FakeCenter(port)
    spool = ClipSpool(directory)
    uploader = ClipUploader(spool, url, TOKEN, idle_poll_s=0.05)
    uploader.start()
    try:
        wait_for(lambda: len(spool) == 0, "the restarted worker empties its spool")
        puts = center.puts()
        assert set(acknowledged) <= set(puts)
        assert len(puts) - len(acknowledged) in (0, 1)  # the clip being added when it died may have made it
        assert set(puts.values()) == {1}  # each clip once
        for digest, body in center.stored.items():
            assert hashlib.sha256(body).hexdigest() == digest
    finally:
        uploader.stop()
        spool.close()
        center.close()


# --- against the real center --------------------------------------------------------------------------
async def _until(condition: Callable[[], object]) -> None:
    """Poll a plain condition without blocking the event loop the center runs on."""

    async def check() -> object:
        return condition()

    await poll(check)


async def test_the_real_center_stores_a_clip_once_and_links_it_to_its_incident(
    center_factory,  # noqa: F811 - the fixtures imported above
    database_url: str,  # noqa: F811
    redis_db,  # noqa: F811
    clip_mp4: bytes,  # noqa: F811
    tmp_path: Path,
) -> None:
    center = await center_factory(database_url)
    alert = make_alert()
    xadd(redis_db, alert)
    city = auth("city_command", None, "chief")

    async def incident() -> dict | None:
        r = await center.client.get("/api/v1/incidents", headers=city)
        return next((i for i in r.json()["items"] if i["alert_id"] == alert.id), None)

    found = await poll(incident)
    assert isinstance(found, dict)
    meta = make_meta(len(clip_mp4)).model_copy(
        update={"camera_id": alert.camera_id, "alert_ids": (alert.id,)}
    )
    spool = ClipSpool(tmp_path / "spool")
    worker_token = auth("worker", None, "w1")["Authorization"].removeprefix("Bearer ")
    uploader = ClipUploader(spool, center.base, worker_token, idle_poll_s=0.05)
    try:
        digest = spool.add(stage(spool, clip_mp4), meta)
        spool.add_failure(
            ClipFailure(camera_id=alert.camera_id, alert_ids=("gone-1",), reason="camera offline")
        )
        uploader.start()
        await _until(lambda: len(spool) == 0)
        # killed between the center's answer and the removal: after a restart the clip is in the spool again
        spool.add(stage(spool, clip_mp4), meta)
        await _until(lambda: len(spool) == 0)
        counts = uploader.counts
        assert (counts.uploaded, counts.duplicates, counts.failures_reported, counts.failed_final) == (
            1,
            1,
            1,
            0,
        )
        r = await center.client.get(f"/api/v1/incidents/{found['id']}/clips", headers=city)
        assert r.status_code == 200, r.text
        assert [c["id"] for c in r.json()] == [digest]  # one clip, however often it was sent
        stored = sorted((tmp_path / "data" / "clips").glob("*/*.mp4"))
        assert [p.name for p in stored] == [f"{digest}.mp4"]
    finally:
        uploader.stop()
        spool.close()


async def test_the_real_center_refuses_a_token_that_is_not_a_workers_and_the_clip_stays(
    center_factory,  # noqa: F811 - the fixtures imported above
    database_url: str,  # noqa: F811
    redis_db,  # noqa: F811
    clip_mp4: bytes,  # noqa: F811
    tmp_path: Path,
) -> None:
    center = await center_factory(database_url)
    spool = ClipSpool(tmp_path / "spool")
    operator = auth("operator", "st-nanguan", "alice")["Authorization"].removeprefix("Bearer ")
    uploader = ClipUploader(spool, center.base, operator, idle_poll_s=0.05, auth_retry_s=0.05)
    try:
        spool.add(stage(spool, clip_mp4), make_meta(len(clip_mp4)))
        uploader.start()
        await _until(lambda: uploader.counts.auth_refused >= 2)
        assert len(spool) == 1 and uploader.counts.failed_final == 0
    finally:
        uploader.stop()
        spool.close()
