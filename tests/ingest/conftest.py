"""Fixtures of the ingest tests: fake sinks, a real Redis DB of the suite's server, clips, a real RTSP server
factory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import redis

from contracts import Alert, AlertKind, Camera, Frame
from gridwatch.demo.clips import Scene, Walker, loop_clip, make_clip
from ingest.config import IngestConfig
from ingest.worker import IngestWorker
from tests.support.rtsp import RtspServer


class FakeSink:
    """A FrameSink that records what it got (thread-safe), optionally slow."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.frames: list[Frame] = []
        self.changes: list[set[str]] = []
        self._lock = threading.Lock()

    def submit(self, frame: Frame) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            self.frames.append(frame)

    def cameras_changed(self, cameras: Mapping[str, Camera]) -> None:
        with self._lock:
            self.changes.append(set(cameras))

    def dropped(self, camera_id: str) -> int:
        return 0  # keeps every frame

    def of(self, camera_id: str) -> list[Frame]:
        with self._lock:
            return [f for f in self.frames if f.camera_id == camera_id]


class FakeAlerts:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self._lock = threading.Lock()

    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None:
        with self._lock:
            self.alerts.append(alert)

    def kinds(self, camera_id: str) -> list[AlertKind]:
        with self._lock:
            return [a.kind for a in self.alerts if a.camera_id == camera_id]


def wait_until(condition: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll until `condition()` is truthy; fail with `what` after `timeout` seconds (generous: loaded CI)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def alerts() -> FakeAlerts:
    return FakeAlerts()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on this test's own Redis DB (`redis_url`: empty now, flushed afterwards)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=10)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real clips (320x180, 25 fps, a keyframe every 1 s), looped to last ~10 minutes."""
    root = tmp_path_factory.mktemp("ingest-clips")
    walker = Walker(path=((0.0, 0.1, 0.9), (4.0, 0.9, 0.9)))
    base = make_clip(
        root / "base.mp4", Scene(width=320, height=180, fps=25, seconds=4, walkers=(walker,)), gop_seconds=1.0
    )
    return {"base": base, "loop": loop_clip(base, root / "loop.mp4", 150)}


@pytest.fixture
def rtsp_server() -> Iterator[Callable[[dict[str, Path]], RtspServer]]:
    servers: list[RtspServer] = []

    def start(mounts: dict[str, Path]) -> RtspServer:
        server = RtspServer(mounts)
        servers.append(server)
        try:
            return server.start()
        except RuntimeError as exc:
            pytest.fail(f"RTSP server could not start: {exc}")

    yield start
    for server in servers:
        if server.proc is not None:
            try:
                server.cont_process()
            except ProcessLookupError:
                pass
        server.kill()


def reader_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("ingest-", "ingest_"))]


@pytest.fixture
def workers() -> Iterator[Callable[[IngestWorker], IngestWorker]]:
    """Start workers through this; each is stopped at the end, and no reader thread may be left behind."""
    started: list[IngestWorker] = []

    def start(worker: IngestWorker) -> IngestWorker:
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=20)
    assert reader_threads() == [], "reader threads leaked"


def make_config(**overrides: object) -> IngestConfig:
    """An IngestConfig with test-speed timeouts and backoff; each test file adds its own overrides."""
    fields: dict[str, object] = dict(
        worker_id="w-test",
        backoff_initial_s=0.2,
        backoff_max_s=1.0,
        open_timeout_s=5.0,
        read_timeout_s=5.0,
    )
    fields.update(overrides)
    return IngestConfig(**fields)  # type: ignore[arg-type]
