"""The console and live-view routers in-process (httpx over ASGI): files, headers, errors, offline camera."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from center_api.console import STATIC_DIR, console_router
from center_api.errors import NotFound, install_error_handlers
from center_api.live import LiveRelay, LiveSettings, build_live_router
from tests.support.rtsp import free_port

OFFER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    relay = LiveRelay(LiveSettings(open_timeout_s=3))
    offline = f"rtsp://127.0.0.1:{free_port()}/gone"

    async def camera_url(camera_id: str) -> str:
        if camera_id != "cam-off":
            raise NotFound(f"no such camera: {camera_id}", code="camera_not_found")
        return offline

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(console_router())
    app.include_router(build_live_router(relay, camera_url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c
    await relay.close()


async def test_console_page_and_files(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in re.findall(r'(?:src|href)="/console/([^"]+)"', page.text):
        assert (await client.get(f"/console/{name}")).status_code == 200, name
    script = await client.get("/console/console.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/console/nope.js")).status_code == 404
    assert (await client.get("/console/..%2Frouter.py")).status_code == 404


def test_console_loads_nothing_from_the_internet() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        urls = [
            u for u in re.findall(r"https?://[^\s\"'`)]+", text) if not u.startswith("http://www.w3.org/")
        ]
        assert urls == [], f"{path.name} refers to {urls}"


async def test_live_unknown_camera_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/cameras/cam-x/live", json={"sdp": OFFER, "type": "offer"})
    assert response.status_code == 404
    assert response.json() == {"detail": "no such camera: cam-x", "code": "camera_not_found"}


@pytest.mark.integration
async def test_live_offline_camera_is_503_with_the_reason(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/cameras/cam-off/live", json={"sdp": OFFER, "type": "offer"})
    assert response.status_code == 503
    assert response.json()["detail"].startswith("camera cam-off is offline: cannot open the stream")
    assert response.json()["code"] == "camera_offline"
    assert (await client.get("/api/v1/live")).json() == []


async def test_live_rejects_an_offer_without_video_codecs(client: httpx.AsyncClient) -> None:
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    response = await client.post("/api/v1/cameras/cam-off/live", json={"sdp": sdp, "type": "offer"})
    assert response.status_code == 415
    assert response.json()["code"] == "no_common_codec"


async def test_hang_up_of_an_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/cameras/cam-off/live/nope")
    assert response.status_code == 404 and response.json()["code"] == "live_session_not_found"
