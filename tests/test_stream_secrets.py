"""Integration: a stream URL's password never leaks, whichever way opening it fails and whoever opens it.

Every URL below carries the user `admin` and a password (percent-encoded, raw with delimiters, or in the
query) and fails in its own way: connection refused, RTSP 404 from a real GStreamer server, a host that does
not resolve, junk bytes from a TCP server, a server that accepts and never answers. Each is opened by
(1) the ingest worker (health in Redis, metrics, alerts, logs), (2) the probe and `gridwatch cameras probe`,
and (3) the live view of a running center (`POST /api/v1/cameras/{id}/live`). No log line, health record,
metric, CLI output or response body may hold the password or the user:password pair.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator

import pytest
import redis
from typer.testing import CliRunner

from contracts import Camera, health_key, redact_url
from gridwatch.cli import app as cli_app
from gridwatch.demo.clips import Scene, make_clip
from ingest.cameras import StaticCameraSource
from ingest.health import format_health_table, read_health
from ingest.metrics import MetricsServer, WorkerCollector
from ingest.probe import ProbeError, probe
from ingest.worker import IngestWorker
from tests.center_api.conftest import (  # noqa: F401 - fixtures are found by name
    NANGUAN_1,
    SCRAPE,
    auth,
    center_factory,
    database_url,
    redis_db,
)
from tests.ingest.badsources import BadServer, free_port
from tests.ingest.conftest import FakeAlerts, FakeSink, make_config, reader_threads, wait_until
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.integration

SECRET = "Hunter2Secret"  # the distinctive core of every password below: no form of it may appear
PASSWORD = f"{SECRET}/#?@"  # delimiters a URL parser trips on
ENCODED = f"{SECRET}%2F%23%3F%40"
PAIR = "admin:"  # the user:password pair starts so; the bare user name alone is not a secret
# Junk bytes fail FFmpeg's probe, or PyAV's UTF-8 decoding of the junk metadata FFmpeg found.
JUNK = r"invalid data|decode"
SDP_OFFER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\n"


class SilentServer:
    """Accepts TCP connections and never sends a byte (a frozen camera); `.port`, `.close()`."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def failing_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, str]]]:
    """{case: (url, a pattern its reason must match)}, every URL with a password, every one failing."""
    clip = make_clip(tmp_path_factory.mktemp("secrets") / "clip.mp4", Scene(width=160, height=90, seconds=2))
    rtsp = RtspServer({"/cam": clip})
    try:
        rtsp.start()
    except RuntimeError as exc:
        pytest.fail(f"RTSP server could not start: {exc}")
    garbage, silent = BadServer("garbage"), SilentServer()
    local = "127.0.0.1"
    try:
        yield {
            "refused": (f"rtsp://admin:{ENCODED}@{local}:{free_port()}/live", r"refused"),
            "refused-raw-password": (f"rtsp://admin:{PASSWORD}@{local}:{free_port()}/live", r"error"),
            "rtsp-404": (f"rtsp://admin:{ENCODED}@{local}:{rtsp.port}/no-such-mount", r"404"),
            "unresolvable": (
                f"rtsp://admin:{ENCODED}@no-such-camera.invalid/live",
                r"cannot resolve host 'no-such-camera\.invalid'",
            ),
            "garbage": (f"rtsp://admin:{ENCODED}@{local}:{garbage.port}/live", JUNK),
            "garbage-query": (
                f"http://{local}:{garbage.port}/video.ts?user=admin&password={ENCODED}",
                JUNK,
            ),
            "silent": (f"rtsp://admin:{ENCODED}@{local}:{silent.port}/live", r"."),
        }
    finally:
        silent.close()
        garbage.close()
        rtsp.kill()


def assert_no_secret(text: str, where: str) -> None:
    assert SECRET not in text, f"the password leaked into {where}"
    assert PAIR not in text and "admin%3A" not in text, f"the user:password pair leaked into {where}"


def test_the_ingest_worker_keeps_the_password_out_of_health_metrics_alerts_and_logs(
    failing_urls: dict[str, tuple[str, str]],
    redis_db: redis.Redis,  # noqa: F811 - the fixture imported above
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cameras = [Camera(id=case, url=url, sample_fps=1.0) for case, (url, _) in failing_urls.items()]
    alerts = FakeAlerts()
    config = make_config(worker_id="w-secrets", offline_after_s=1.0, health_interval_s=0.5)
    worker = IngestWorker(config, StaticCameraSource(cameras), FakeSink(), alerts, redis_db)
    worker.start()
    served = MetricsServer([WorkerCollector(worker)], "127.0.0.1", 0)  # as `ingest.run.serve` does
    try:
        wait_until(
            lambda: (
                all(h.reason and h.reconnects >= 2 for h in worker.health().values())
                and len(worker.health()) == len(cameras)
            ),
            90,
            "every camera to fail at least twice",
        )
        wait_until(lambda: all(redis_db.exists(health_key(c.id)) for c in cameras), 30, "health in Redis")
        url = f"http://127.0.0.1:{served.port}/metrics"
        metrics = urllib.request.urlopen(url, timeout=10).read().decode()
        records = {c.id: (redis_db.get(health_key(c.id)) or b"").decode() for c in cameras}
        table = format_health_table(read_health(redis_db))
        health = worker.health()
    finally:
        served.close()
        worker.stop(timeout=20)
    for case, (_, pattern) in failing_urls.items():
        reason = health[case].reason or ""
        assert re.search(pattern, reason, re.IGNORECASE), (case, reason)
        assert_no_secret(records[case], f"the health record of {case}")
    assert 'camera="refused"' in metrics  # the metrics do describe these cameras
    assert_no_secret(metrics, "the worker's metrics")
    assert_no_secret(table, "the health table")
    assert_no_secret("\n".join(a.model_dump_json() for a in alerts.alerts), "the offline alerts")
    assert len(alerts.alerts) >= len(cameras)
    assert_no_secret(caplog.text, "the worker's log")
    assert "rtsp://***@127.0.0.1:" in caplog.text  # the log does name the streams, redacted
    assert reader_threads() == [], "reader threads leaked"


def test_the_probe_and_its_cli_keep_the_password_out_of_errors_and_output(
    failing_urls: dict[str, tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    for case, (url, pattern) in failing_urls.items():
        with pytest.raises(ProbeError) as err:
            probe(url, timeout_s=3)
        message = str(err.value)
        assert message.startswith(redact_url(url)), (case, message)
        assert re.search(pattern, message, re.I), (case, message)
        assert_no_secret(message, f"the probe error of {case}")
        result = runner.invoke(cli_app, ["cameras", "probe", url, "--timeout", "3"])
        assert result.exit_code == 2, (case, result.output)
        assert re.search(pattern, result.output, re.I), (case, result.output)
        assert_no_secret(result.output + (result.stderr or ""), f"the CLI output of {case}")
    assert_no_secret(caplog.text, "the probe's log")


async def test_the_live_view_keeps_the_password_out_of_its_answers_and_logs(
    failing_urls: dict[str, tuple[str, str]],
    center_factory,  # noqa: F811 - the fixture imported above
    database_url: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    center = await center_factory(database_url)
    client = center.client
    point = {"lat": NANGUAN_1[0], "lon": NANGUAN_1[1]}
    integrator = auth("integrator", None, "vendor")
    for case, (url, _) in failing_urls.items():
        body = {"id": f"cam-{case}", "name": case, "url": url, "location": point}
        created = await client.post("/api/v1/cameras", json=body, headers=integrator)
        assert created.status_code == 201, created.text
        assert_no_secret(created.text, f"the registry's answer for {case}")

    viewer = auth("city_command", None, "chief")

    async def watch(case: str) -> tuple[str, int, str]:
        answer = await client.post(
            f"/api/v1/cameras/cam-{case}/live", json={"sdp": SDP_OFFER, "type": "offer"}, headers=viewer
        )
        return case, answer.status_code, answer.text

    answers = await asyncio.gather(*(watch(case) for case in failing_urls))
    for case, status, text in answers:
        assert status == 503, (case, status, text)
        body = json.loads(text)
        assert body["code"] == "camera_offline" and body["detail"].startswith(f"camera cam-{case} is offline")
        assert_no_secret(text, f"the live view's answer for {case}")
    by_case = {case: text for case, _, text in answers}
    for case, (_, pattern) in failing_urls.items():
        if case != "refused-raw-password":  # FFmpeg parses that URL its own way: any honest reason will do
            assert re.search(pattern, by_case[case], re.I), (case, by_case[case])
    listing = await client.get("/api/v1/cameras", headers=integrator)
    metrics = await client.get("/metrics", headers=SCRAPE)
    assert listing.status_code == 200 and metrics.status_code == 200
    assert_no_secret(listing.text, "the camera listing")
    assert_no_secret(metrics.text, "the center's metrics")
    assert_no_secret(caplog.text, "the center's log")


def test_secret_is_really_in_every_url(failing_urls: dict[str, tuple[str, str]]) -> None:
    """The checks above mean something only if each URL does carry the password."""
    for case, (url, _) in failing_urls.items():
        assert SECRET in url and "admin" in url, case
