from __future__ import annotations

from contracts import AlertKind, CameraState
from ingest.monitor import CameraMonitor


def test_outage_gives_exactly_one_offline_and_one_online_alert() -> None:
    m = CameraMonitor(offline_after_s=10, now=0)
    assert m.state is CameraState.starting
    t = m.frame(1)
    assert t is not None and t.state is CameraState.online and t.alert is None
    t = m.failure(5, "end of stream")
    assert t is not None and t.state is CameraState.degraded and t.alert is None
    alerts = []
    for now in range(6, 40):  # many failed reconnects and ticks inside one outage
        for t in (m.failure(now, "Connection refused"), m.tick(now + 0.5)):
            if t is not None and t.alert is not None:
                alerts.append((now, t.alert))
    assert alerts == [(15, AlertKind.camera_offline)]  # down since 5, offline after 10 s
    assert m.state is CameraState.offline and m.reason == "Connection refused"
    t = m.frame(41)
    assert t is not None and t.alert is AlertKind.camera_online
    assert m.frame(42) is None


def test_a_short_glitch_gives_no_alert() -> None:
    m = CameraMonitor(offline_after_s=10, now=0)
    m.frame(1)
    m.failure(2, "stalled")
    assert m.tick(5) is None
    t = m.frame(6)
    assert t is not None and t.state is CameraState.online and t.alert is None


def test_a_camera_that_never_comes_up_goes_offline_once() -> None:
    m = CameraMonitor(offline_after_s=3, now=0)
    assert m.failure(1, "Connection refused") is None
    assert m.state is CameraState.starting and m.reason == "Connection refused"
    t = m.tick(3)
    assert t is not None and t.alert is AlertKind.camera_offline
    assert m.tick(10) is None
    assert m.failure(11, "Connection refused") is None


def test_adopted_offline_camera_alerts_online_only() -> None:
    m = CameraMonitor(offline_after_s=3, now=0)
    m.adopt_offline("Connection refused")
    assert m.tick(100) is None
    t = m.frame(101)
    assert t is not None and t.alert is AlertKind.camera_online
