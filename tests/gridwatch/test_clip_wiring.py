"""The worker's clip side as `gridwatch ingest` wires it: settings from the environment, a refused combination
named in one line, the worker token the CLI issues, the spool/recorder/uploader/listener started and stopped
together (on the suite's Redis, with the real recorder), and the uploader against the real center: a clip
sent twice (a kill between the center's answer and the removal) is stored once."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from contracts import CLIP_REQUESTS_STREAM, Alert, ClipRequest, encode_clip_request
from gridwatch.settings import GridwatchSettings
from gridwatch.worker_clips import clip_side
from tests.support.paths import REPO, model_path
from tests.support.stack import Process, gridwatch_args, intrusion_camera, write_city

SECRET = "clip-wiring-secret-0123456789abcdef0123"


class Alerts:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None:
        self.alerts.append(alert)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDWATCH_")}
    env.update(GRIDWATCH_DATA_DIR=str(tmp_path / "data"), GRIDWATCH_JWT_SECRET=SECRET, **extra)
    return env


def wait_for(condition: Callable[[], object], what: str, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within_s} s: {what}")
        time.sleep(0.02)


def test_clip_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CENTER_URL": "http://center.example:8000",
        "WORKER_TOKEN": "wkr-secret-value",
        "CLIP_PREROLL_S": "6",
        "CLIP_POSTROLL_S": "4",
        "CLIP_MAX_S": "30",
        "RING_MAX_MB": "2",
        "RING_BUDGET_MB": "100",
        "CLIP_SPOOL_MB": "10",
    }.items():
        monkeypatch.setenv(f"GRIDWATCH_{name}", value)
    settings = GridwatchSettings()
    assert settings.center_url == "http://center.example:8000"
    assert settings.worker_token.get_secret_value() == "wkr-secret-value"
    assert "wkr-secret-value" not in repr(settings)
    config = settings.clip_config()
    assert (config.enabled, config.preroll_s, config.postroll_s, config.clip_max_s) == (True, 6, 4, 30)
    assert (config.ring_max_bytes, config.ring_budget_bytes) == (2 * 2**20, 100 * 2**20)


def test_defaults_spool_without_a_center(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("GRIDWATCH_")]:
        monkeypatch.delenv(key)
    settings = GridwatchSettings()
    assert (settings.center_url, settings.worker_token.get_secret_value(), settings.clips_enabled) == (
        "",
        "",
        True,
    )
    config = settings.clip_config()
    assert (config.preroll_s, config.postroll_s, config.clip_max_s) == (10, 10, 60)
    assert (config.ring_max_bytes, config.ring_budget_bytes) == (8 * 2**20, 768 * 2**20)
    assert settings.clip_spool_mb == 2048


def test_ingest_refuses_clip_settings_that_do_not_fit_in_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path, GRIDWATCH_CLIP_MAX_S="12")  # shorter than 10 s pre-roll + 10 s post-roll
    proc = subprocess.run(
        [sys.executable, "-m", "gridwatch", "ingest"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "clip settings" in proc.stderr and "clip_max_s" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_token_issue_makes_a_worker_token(tmp_path: Path) -> None:
    from center_api.auth import Role, decode_token

    proc = subprocess.run(
        [sys.executable, "-m", "gridwatch", "token", "issue", "--role", "worker", "--sub", "w1"],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    principal = decode_token(SECRET, proc.stdout.strip())
    assert (principal.role, principal.station_id, principal.subject) == (Role.worker, None, "w1")


def test_the_clip_side_starts_and_stops_together(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = GridwatchSettings(
        data_dir=tmp_path / "data", center_url="", clip_preroll_s=4, clip_postroll_s=2
    )
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    publisher = Alerts()
    try:
        with clip_side(settings, settings.clip_config(), "w-1", publisher, client) as (
            alerts,
            recorder,
            coll,
        ):
            assert recorder is not None and alerts is not publisher
            spool_dir = tmp_path / "data" / "clips" / "w-1"
            assert (spool_dir / "lock").exists()
            listener_metric = "gridwatch_clip_requests_not_mine"
            request = ClipRequest(
                request_id="req-1", camera_id="cam-elsewhere", seconds=3, requested_at=datetime.now(UTC)
            )

            def not_mine() -> float:
                client.xadd(CLIP_REQUESTS_STREAM, encode_clip_request(request))  # type: ignore[arg-type]
                values = {f.name: f.samples[0].value for c in coll for f in c.collect()}
                return values.get(listener_metric, 0.0)

            wait_for(not_mine, "the listener to hand a request to the recorder (another worker's camera)")
        no_center = [r for r in caplog.records if "no center URL configured" in r.getMessage()]
        assert len(no_center) == 1
        assert not (spool_dir / "lock").exists() or _unlocked(spool_dir)
    finally:
        client.close()


def _unlocked(spool_dir: Path) -> bool:
    from ingest.spool import ClipSpool

    ClipSpool(spool_dir).close()  # SpoolInUse if the side left it open
    return True


def test_clips_off_leaves_the_alerts_as_they_are(tmp_path: Path, redis_url: str) -> None:
    settings = GridwatchSettings(data_dir=tmp_path / "data", clips_enabled=False)
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    publisher = Alerts()
    try:
        with clip_side(settings, settings.clip_config(), "w-1", publisher, client) as (
            alerts,
            recorder,
            coll,
        ):
            assert (alerts, recorder, coll) == (publisher, None, [])
        assert not (tmp_path / "data" / "clips").exists()
    finally:
        client.close()


def test_gridwatch_ingest_runs_the_clip_side_and_stops_it(tmp_path: Path, redis_url: str) -> None:
    """The real command: spool open, one line about the missing center URL, a clean stop that releases it."""
    camera = intrusion_camera("cam-a", "rtsp://127.0.0.1:9/none", 36.6135, 101.775)  # never answers
    config = write_city(tmp_path / "config", [camera])
    env = _env(
        tmp_path,
        GRIDWATCH_REDIS_URL=redis_url,
        GRIDWATCH_MODEL=str(model_path()),
        GRIDWATCH_CONFIG_DIR=str(config),
    )
    worker = Process(
        "ingest",
        gridwatch_args("ingest", "--cameras", str(config / "cameras.yaml"), "--worker-id", "w-smoke"),
        env,
        tmp_path,
    )
    try:
        wait_for(
            lambda: "ingest worker w-smoke started" in worker.log_path.read_text() or not worker.alive(),
            "the worker to start (after its clip side)",
            within_s=120,
        )
        assert worker.alive(), worker.log_tail()
    finally:
        code = worker.stop()
    log = worker.log_path.read_text()
    assert code == 0, worker.log_tail()
    assert log.count("no center URL configured") == 1
    assert "ingest worker w-smoke stopped" in log
    assert "Traceback" not in log, worker.log_tail()
    assert _unlocked(tmp_path / "data" / "clips" / "w-smoke")
