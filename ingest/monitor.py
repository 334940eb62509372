"""Pure per-camera health state machine: `starting | online | degraded | offline`, and when to alert.

    starting --frame--> online --failure--> degraded --down > offline_after_s--> offline (camera_offline)
        |                 ^                    |                                    |
        +--down > offline_after_s--> offline   +--frame--> online                   +--frame--> online
                                                                                        (camera_online)

Exactly one `camera_offline` per outage (however many reconnects fail inside it) and exactly one
`camera_online` when frames come back after it. A camera that never produced a frame goes offline (with its
alert) once it has failed for `offline_after_s`. Times are monotonic seconds passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from contracts import Alert, AlertKind, Camera, CameraState


@dataclass(frozen=True)
class Transition:
    state: CameraState
    reason: str | None
    alert: AlertKind | None = None


class CameraMonitor:
    def __init__(self, offline_after_s: float, now: float) -> None:
        self.offline_after_s = offline_after_s
        self.state = CameraState.starting
        self.reason: str | None = "connecting"
        self.last_error: str | None = None
        self.down_since: float | None = now  # not yet producing frames
        self.last_frame_at: float | None = None
        self.reconnects = 0
        self._alerted_offline = False

    def frame(self, now: float) -> Transition | None:
        """A sample arrived: the camera is up."""
        self.last_frame_at = now
        self.down_since = None
        if self.state is CameraState.online:
            return None
        alert = AlertKind.camera_online if self._alerted_offline else None
        self._alerted_offline = False
        return self._set(CameraState.online, None, alert)

    def failure(self, now: float, reason: str) -> Transition | None:
        """The stream failed (error, end of stream, stall). The reader will reconnect."""
        self.last_error = reason
        if self.down_since is None:
            self.down_since = now
        if self.state is CameraState.online:
            return self._set(CameraState.degraded, reason)
        if self.state is CameraState.offline:
            self.reason = reason  # keep the newest reason, no new transition or alert
            return None
        self.reason = reason
        return self.tick(now)

    def adopt_offline(self, reason: str | None) -> None:
        """Take over a camera another worker already reported offline: no second offline alert, and a
        `camera_online` alert when it comes back."""
        self.state = CameraState.offline
        self.reason = reason
        self._alerted_offline = True

    def reconnecting(self) -> None:
        self.reconnects += 1

    def degrade(self, reason: str) -> Transition | None:
        """The stream is up but not well (e.g. sampling far below the wanted rate)."""
        if self.state is CameraState.online:
            return self._set(CameraState.degraded, reason)
        return None

    def tick(self, now: float) -> Transition | None:
        """Called periodically: escalates a long outage to offline (once)."""
        if self.down_since is None or self.state is CameraState.offline:
            return None
        if now - self.down_since >= self.offline_after_s:
            self._alerted_offline = True
            return self._set(CameraState.offline, self.reason or self.last_error, AlertKind.camera_offline)
        return None

    def _set(self, state: CameraState, reason: str | None, alert: AlertKind | None = None) -> Transition:
        self.state = state
        self.reason = reason
        return Transition(state, reason, alert)


def build_alert(
    camera: Camera, kind: AlertKind, reason: str | None, worker_id: str, last_frame_at: datetime | None
) -> Alert:
    """The `camera_offline` / `camera_online` alert: severity 3, the camera's site and location, a reason
    (never the URL). An offline alert is dated by the last frame seen, when there was one."""
    now = datetime.now(UTC)
    if kind is AlertKind.camera_offline:
        detail = f"camera offline: {reason or 'no frames'}"
        captured = last_frame_at or now
    else:
        detail = "camera online: frames are arriving again"
        captured = now
    return Alert(
        kind=kind,
        severity=3,
        camera_id=camera.id,
        site_id=camera.site_id,
        captured_at=captured,
        location=camera.location,
        worker_id=worker_id,
        detail=detail[:2000],
    )
