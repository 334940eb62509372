"""The spine, end to end on real parts: a real RTSP server, a Redis DB of the suite's own server, the real
worker and center processes.

Camera `walk` shows a real person (from Ultralytics' bus.jpg) walking into its zone; camera `quiet` shows a
person who never enters it. Exactly one intrusion incident must land, in the right cell and station, on that
station's feed (and not on the other station's), in the API, with a snapshot that decodes as a JPEG.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from center_api.auth import issue_token
from gridwatch.demo.clips import Scene, Walker, make_clip, quiet_scene
from tests.support.paths import model_path
from tests.support.rtsp import RtspServer, free_port
from tests.support.stack import (
    Process,
    api_get,
    api_json,
    gridwatch_args,
    intrusion_camera,
    wait_until,
    write_city,
)

pytestmark = pytest.mark.integration

SECRET = "end-to-end-test-secret-0123456789abcdef"
QUIET_SECONDS = 20.0


class FeedListener:
    """Collects every message of one station's WebSocket feed on a thread."""

    def __init__(self, url: str) -> None:
        self.messages: list[dict] = []
        self._ws = connect(url, open_timeout=10)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in self._ws:
                self.messages.append(json.loads(raw))
        except ConnectionClosed:
            pass

    def close(self) -> None:
        self._ws.close()
        self._thread.join(timeout=5)


def test_person_walking_into_zone_becomes_one_routed_incident(tmp_path: Path, redis_url: str) -> None:
    walk = Walker(path=((0.0, 0.10, 0.92), (3.0, 0.25, 0.92), (7.0, 0.74, 0.95), (45.0, 0.76, 0.95)))
    walk_clip = make_clip(tmp_path / "walk.mp4", Scene(seconds=45.0, walkers=(walk,)))
    quiet_clip = make_clip(tmp_path / "quiet.mp4", quiet_scene(QUIET_SECONDS))
    with RtspServer({"/walk": walk_clip, "/quiet": quiet_clip}) as rtsp:
        config_dir = write_city(
            tmp_path / "config",
            [
                # c-nanguan-02 -> st-nanguan
                intrusion_camera("cam-walk", rtsp.url("/walk"), lat=36.6135, lon=101.7850),
                # c-xiadu-01 -> st-xiadu
                intrusion_camera("cam-quiet", rtsp.url("/quiet"), lat=36.6210, lon=101.7750),
            ],
        )
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "GRIDWATCH_DATABASE_URL"}  # SQLite in data/
        env.update(
            GRIDWATCH_REDIS_URL=redis_url,
            GRIDWATCH_DATA_DIR=str(tmp_path / "data"),
            GRIDWATCH_CONFIG_DIR=str(config_dir),
            GRIDWATCH_MODEL=str(model_path()),
            GRIDWATCH_JWT_SECRET=SECRET,
        )
        api = f"http://127.0.0.1:{port}"
        nanguan = issue_token(SECRET, subject="op-a", role="operator", station_id="st-nanguan")
        xiadu = issue_token(SECRET, subject="op-b", role="operator", station_id="st-xiadu")
        city = issue_token(SECRET, subject="cmd", role="city_command", station_id=None)
        center = Process("center", gridwatch_args("center", "--port", str(port)), env, tmp_path)
        processes = [center]
        feeds: list[FeedListener] = []
        try:
            wait_until(lambda: api_get(f"{api}/api/v1/health", "")[0] == 200, 60, "the center API", processes)
            feed_a = FeedListener(f"ws://127.0.0.1:{port}/api/v1/feed?token={nanguan}")
            feed_b = FeedListener(f"ws://127.0.0.1:{port}/api/v1/feed?token={xiadu}")
            feeds = [feed_a, feed_b]
            ingest = Process(
                "ingest",
                gridwatch_args("ingest", "--cameras", str(config_dir / "cameras.yaml")),
                env,
                tmp_path,
            )
            processes.append(ingest)
            started = time.monotonic()

            def incidents(token: str) -> list[dict]:
                return api_json(f"{api}/api/v1/incidents", token)["items"]

            found = wait_until(lambda: incidents(city), 150, "an intrusion incident", processes)
            # Let the quiet camera play its whole clip before judging that it stayed quiet.
            while time.monotonic() - started < QUIET_SECONDS + 15:
                assert ingest.alive(), ingest.log_tail()
                time.sleep(1)
            found = incidents(city)
            assert len(found) == 1, f"expected exactly one incident, got {json.dumps(found, indent=1)}"
            incident = found[0]
            assert incident["kind"] == "intrusion"
            assert incident["camera_id"] == "cam-walk"
            assert incident["cell_id"] == "c-nanguan-02"
            assert incident["community_id"] == "c-nanguan"
            assert incident["station_id"] == "st-nanguan"
            assert incident["zone"] == "right-half"
            assert any(obj["cls"] == "person" for obj in incident["objects"])

            # Station scope: A sees it, B does not.
            assert [i["id"] for i in incidents(nanguan)] == [incident["id"]]
            assert incidents(xiadu) == []

            # The snapshot decodes as a JPEG with the camera's picture in it.
            status, body = api_get(api + incident["snapshot_url"], nanguan)
            assert status == 200
            assert body[:2] == b"\xff\xd8"
            image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape[0] > 100 and image.shape[1] > 100

            # The live feed: on station A's, not on station B's.
            wait_until(lambda: feed_a.messages, 20, "the feed message on st-nanguan", processes)
            on_feed = {m["incident"]["id"] for m in feed_a.messages if m.get("type") == "incident"}
            assert on_feed == {incident["id"]}, json.dumps(feed_a.messages, indent=1)[:4000]
            assert not [m for m in feed_b.messages if m.get("type") == "incident"]
        finally:
            for feed in feeds:
                feed.close()
            for process in reversed(processes):
                process.stop()
