"""Fixtures of the console and live-view tests: a real RTSP camera serving a clip of real people, Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from gridwatch.demo.clips import demo_scene, loop_clip, make_clip
from tests.console.stack import CHROMIUM, CHROMIUM_ARGS
from tests.support.fixtures import entered_or_fail
from tests.support.redisdb import RedisDatabases
from tests.support.rtsp import RtspServer


@pytest.fixture(scope="session")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-minute H.264 clip (a 20 s scene looped without re-encoding), keyframe every second."""
    root = tmp_path_factory.mktemp("console-clips")
    scene = make_clip(root / "scene.mp4", demo_scene(seconds=20.0), gop_seconds=1.0)
    return loop_clip(scene, root / "live.mp4", times=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}; install Debian's chromium package (the bootstrap does)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def console_redis_url(redis_databases: RedisDatabases) -> Iterator[str]:
    """A Redis DB of the suite's server for one module's stack: empty at the start, flushed at the end."""
    with entered_or_fail(redis_databases.lease()) as url:
        yield url


@pytest.fixture
def rtsp_camera(live_clip: Path) -> Iterator[RtspServer]:
    with RtspServer({"/cam": live_clip}) as server:
        yield server


def established_to(port: int) -> int:
    """TCP connections in state ESTABLISHED whose remote port is `port` (the clients of a local server)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count
