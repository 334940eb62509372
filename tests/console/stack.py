"""A running stack for the browser tests: the center API (uvicorn in a thread), a Redis DB of the suite's
server, Chromium."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import redis
import uvicorn

from center_api.app import create_app
from center_api.auth import issue_token
from center_api.settings import CenterSettings
from contracts import (
    Alert,
    AlertKind,
    CameraState,
    DetectedObject,
    GeoPoint,
    StreamHealth,
    encode_alert_entry,
    health_key,
)
from gridwatch.demo.clips import background, paste, person_sprite
from tests.support.rtsp import free_port
from tests.support.stack import write_city

SECRET = "console-test-secret-of-sufficient-length"
NANGUAN_1 = (36.6135, 101.775)  # cell c-nanguan-01, station st-nanguan
XIADU_2 = (36.62, 101.785)  # cell c-xiadu-02, station st-xiadu
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
VIEWPORT = {"width": 1366, "height": 768}


def redis_client(url: str) -> redis.Redis:
    """A client on the stack's Redis DB (leased by the `console_redis_url` fixture, which empties it)."""
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)


def camera(camera_id: str, url: str, point: tuple[float, float], name: str) -> dict[str, Any]:
    return {"id": camera_id, "name": name, "url": url, "location": {"lat": point[0], "lon": point[1]}}


def snapshot_jpeg() -> bytes:
    """A frame like the ones detection sends: a person on the street, as JPEG."""
    frame = background(640, 360)
    paste(frame, person_sprite(0), 0.7, 0.95, 0.55)
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return bytes(data)


def token(role: str, station: str | None, sub: str) -> str:
    return issue_token(SECRET, subject=sub, role=role, station_id=station)


@dataclass
class Stack:
    base: str
    app: Any
    redis: redis.Redis
    rtsp_port: int

    def api(self, tok: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {tok}"}, timeout=30)

    def publish(self, point: tuple[float, float], camera_id: str, severity: int = 2, **kw: Any) -> Alert:
        alert = Alert(
            kind=kw.pop("kind", AlertKind.intrusion),
            severity=severity,
            camera_id=camera_id,
            captured_at=datetime.now(UTC),
            location=GeoPoint(lat=point[0], lon=point[1]),
            rule="right-half",
            zone="right-half",
            model="yolov8n",
            objects=(
                DetectedObject(cls="person", confidence=0.87, box=(0.64, 0.40, 0.76, 0.95), track_id=3),
            ),
            **kw,
        )
        self.redis.xadd("gw:alerts", encode_alert_entry(alert, snapshot_jpeg()))  # type: ignore[arg-type]
        return alert

    def set_health(self, camera_id: str, state: CameraState, fps: float | None = None) -> None:
        now = datetime.now(UTC)
        health = StreamHealth(
            camera_id=camera_id,
            state=state,
            fps=fps,
            worker_id="w-test",
            last_frame_at=now if state is CameraState.online else None,
            updated_at=now,
            reason=None if state is CameraState.online else "connection refused",
        )
        self.redis.set(health_key(camera_id), health.model_dump_json(), ex=3600)


class CenterThread:
    """The center app under uvicorn, in a thread with its own event loop."""

    def __init__(self, settings: CenterSettings) -> None:
        self.app = create_app(settings)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="center", daemon=True)

    def start(self, timeout: float = 90.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the center server exited during start-up (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the center server did not start within {timeout} s")
            time.sleep(0.1)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        if self.thread.is_alive():
            raise RuntimeError("the center server did not stop within 60 s")


def center_settings(tmp: Path, rtsp_url: str, redis_url: str) -> CenterSettings:
    offline_url = f"rtsp://127.0.0.1:{free_port()}/gone"
    config_dir = write_city(
        tmp / "config",
        [
            camera("cam-a1", rtsp_url, NANGUAN_1, "Nanguan gate"),
            camera("cam-a2", offline_url, (36.6128, 101.7762), "Nanguan market"),
            camera("cam-b1", offline_url, XIADU_2, "Xiadu square"),
        ],
    )
    return CenterSettings(
        redis_url=redis_url,
        database_url=f"sqlite+aiosqlite:///{tmp / 'center.db'}",
        config_dir=config_dir,
        data_dir=tmp / "data",
        jwt_secret=SECRET,  # type: ignore[arg-type]
        consumer_name=f"console-test-{socket.gethostname()}-{os.getpid()}",
        block_ms=200,
    )


def frame_stats(page: Any, selector: str = "#live-video") -> dict[str, float]:
    """Mean and standard deviation of the grey levels of the video element's current frame."""
    return page.evaluate(
        """(sel) => {
            const v = document.querySelector(sel);
            const c = document.createElement('canvas');
            c.width = v.videoWidth; c.height = v.videoHeight;
            if (!c.width) return {mean: 0, std: 0, width: 0};
            const g = c.getContext('2d');
            g.drawImage(v, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            let s = 0, s2 = 0, n = 0;
            for (let i = 0; i < d.length; i += 4 * 7) {
                const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
                s += y; s2 += y * y; n += 1;
            }
            const mean = s / n;
            return {mean, std: Math.sqrt(Math.max(0, s2 / n - mean * mean)), width: c.width};
        }""",
        selector,
    )


def grey_std(png: bytes) -> float:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(np.std(image))
