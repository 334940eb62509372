"""What the flapping-camera case builds on: a seeded outage plan, a frame sink that notes when frames arrive,
and an alert sink that notes when alerts are handed over before passing them on (to the real publisher)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from contracts import Alert, AlertSink, Camera, Frame


class Kind(Enum):
    long = "long"  # the camera is down clearly longer than offline_after_s: one offline, one online alert
    blip = "blip"  # down clearly shorter: no alert


@dataclass(frozen=True)
class Outage:
    kind: Kind
    down_s: float  # from killing the RTSP server to starting it again
    up_s: float  # how long the camera runs after frames are back, before the next kill


def plan_outages(
    seed: int, longs: int, blips: int, long_down_s: tuple[float, float], blip_down_s: tuple[float, float]
) -> list[Outage]:
    """`longs` + `blips` outages in a seeded order, with seeded down and up times."""
    rng = random.Random(seed)
    kinds = [Kind.long] * longs + [Kind.blip] * blips
    rng.shuffle(kinds)
    return [
        Outage(kind, rng.uniform(*(long_down_s if kind is Kind.long else blip_down_s)), rng.uniform(0.3, 1.2))
        for kind in kinds
    ]


class TimedSink:
    """A FrameSink that keeps the monotonic arrival time of every frame (thread-safe, never blocks long)."""

    def __init__(self) -> None:
        self._arrivals: list[float] = []
        self._cond = threading.Condition()

    def submit(self, frame: Frame) -> None:
        with self._cond:
            self._arrivals.append(time.monotonic())
            self._cond.notify_all()

    def dropped(self, camera_id: str) -> int:
        return 0

    def cameras_changed(self, cameras: Mapping[str, Camera]) -> None:
        pass

    def first_after(self, since: float, timeout: float) -> float:
        """The arrival time of the first frame that came after `since`; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                later = [t for t in self._arrivals if t > since]
                if later:
                    return later[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no frame within {timeout:.0f} s")
                self._cond.wait(left)


class RecordingAlerts:
    """An AlertSink in front of another: notes (monotonic time, alert) of each alert, then hands it on."""

    def __init__(self, inner: AlertSink) -> None:
        self.inner = inner
        self._seen: list[tuple[float, Alert]] = []
        self._lock = threading.Lock()

    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None:
        with self._lock:
            self._seen.append((time.monotonic(), alert))
        self.inner.publish(alert, snapshot)

    @property
    def seen(self) -> list[tuple[float, Alert]]:
        with self._lock:
            return list(self._seen)
