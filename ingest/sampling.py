"""Pure sampling and measurement: which packets to decode, which frames to hand on, what the stream is doing.

No I/O and no clock: every call gets the time (stream seconds or monotonic seconds) from the caller.

Two modes, chosen from the measured keyframe interval:
- `keyframes`: the wanted sample rate is at or below the stream's keyframe rate, so only keyframes that are
  due reach the decoder; every other packet is demuxed and dropped undecoded (the cheapest way to sample).
- `all`: the wanted rate is above the keyframe rate; every packet is decoded (a P-frame needs its
  references) and only due frames are converted and handed on.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum


class SamplingMode(StrEnum):
    keyframes = "keyframes"
    all = "all"


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(maximum, initial * 2**attempt)].

    `attempt` counts consecutive failures from 0. Full jitter spreads a crowd of cameras that failed together
    (a network outage) over the whole window instead of having them retry in lockstep.
    """
    cap = min(maximum, initial * (2 ** min(attempt, 30)))
    return (rng or random).uniform(0.0, cap)


class Sampler:
    """Decides, per packet and per decoded frame, what to decode and what to hand on at `sample_fps`.

    Times are stream seconds (pts). Until the keyframe interval is known the sampler decodes keyframes only;
    it switches to `all` once the stream proves to have fewer keyframes than samples wanted, and back when
    the keyframe interval shrinks. A switch to `all` takes effect at a keyframe, so the decoder never sees a
    P-frame without its references.
    """

    def __init__(self, sample_fps: float, slack: float = 0.1) -> None:
        if sample_fps <= 0:
            raise ValueError("sample_fps must be > 0")
        self.period = 1.0 / sample_fps
        self.slack = slack  # allow keyframe rates within 10% of the wanted rate to count as "enough"
        self.mode = SamplingMode.keyframes
        self.keyframe_interval: float | None = None
        self._next_due: float | None = None
        self._feeding = False  # in `all` mode: True once a keyframe has started the decode chain

    def set_keyframe_interval(self, interval: float | None) -> None:
        self.keyframe_interval = interval
        if interval is None or interval <= 0:
            return
        wanted = SamplingMode.all if interval > self.period * (1 + self.slack) else SamplingMode.keyframes
        if wanted != self.mode:
            self.mode = wanted
            self._feeding = False

    def should_decode(self, t: float | None, keyframe: bool) -> bool:
        """Whether the packet at stream time `t` goes to the decoder."""
        if self.mode is SamplingMode.keyframes:
            return keyframe and self._due(t, tolerance=self._keyframe_tolerance())
        if keyframe:
            self._feeding = True
        return self._feeding

    def should_emit(self, t: float | None, keyframe: bool) -> bool:
        """Whether a decoded frame at stream time `t` is handed on; advances the schedule when it is."""
        if self.mode is SamplingMode.keyframes:
            tolerance = self._keyframe_tolerance()
        else:
            tolerance = self.period * 0.25
        if not self._due(t, tolerance):
            return False
        self._advance(t)
        return True

    def reset(self) -> None:
        """A new connection: the decode chain starts again at the next keyframe."""
        self._next_due = None
        self._feeding = False

    def _keyframe_tolerance(self) -> float:
        # Keyframes come on a grid of `keyframe_interval`; accept the keyframe nearest the due time.
        gop = self.keyframe_interval or 0.0
        return min(gop / 2, self.period / 2)

    def _due(self, t: float | None, tolerance: float) -> bool:
        if t is None or self._next_due is None:
            return True
        if t < self._next_due - 2 * self.period:
            return True  # time jumped back (a camera reboot, a looped file): start the schedule again
        return t >= self._next_due - tolerance

    def _advance(self, t: float | None) -> None:
        if t is None:
            self._next_due = None
            return
        if self._next_due is None or t - self._next_due > self.period or t < self._next_due - 2 * self.period:
            self._next_due = (
                t + self.period
            )  # first sample, a gap, or a timestamp jump back: restart the grid
        else:
            self._next_due += self.period


@dataclass
class StreamStats:
    """Sliding-window measurement of one stream from its packets: fps, keyframe interval, bitrate."""

    window_s: float = 10.0
    _packets: deque[tuple[float, int]] = field(default_factory=deque)  # (time, size)
    _keyframes: deque[float] = field(default_factory=deque)
    _samples: deque[float] = field(default_factory=deque)

    def packet(self, t: float, size: int, keyframe: bool) -> None:
        self._packets.append((t, size))
        if keyframe:
            self._keyframes.append(t)
        self._trim(t)

    def sample(self, now: float) -> None:
        self._samples.append(now)
        while self._samples and now - self._samples[0] > self.window_s:
            self._samples.popleft()

    def _trim(self, t: float) -> None:
        while self._packets and t - self._packets[0][0] > self.window_s:
            self._packets.popleft()
        # keep keyframes over a longer window: a GOP can be longer than the packet window
        while len(self._keyframes) > 2 and t - self._keyframes[0] > max(self.window_s, 30.0):
            self._keyframes.popleft()

    @property
    def fps(self) -> float | None:
        if len(self._packets) < 2:
            return None
        span = self._packets[-1][0] - self._packets[0][0]
        return (len(self._packets) - 1) / span if span > 0 else None

    @property
    def bitrate_kbps(self) -> float | None:
        if len(self._packets) < 2:
            return None
        span = self._packets[-1][0] - self._packets[0][0]
        if span <= 0:
            return None
        return sum(size for _, size in list(self._packets)[1:]) * 8 / span / 1000

    @property
    def keyframe_interval(self) -> float | None:
        if len(self._keyframes) < 2:
            return None
        span = self._keyframes[-1] - self._keyframes[0]
        return span / (len(self._keyframes) - 1) if span > 0 else None

    def sample_fps(self, now: float) -> float | None:
        samples = [s for s in self._samples if now - s <= self.window_s]
        if len(samples) < 2:
            return None
        span = now - samples[0]
        return (len(samples) - 1) / span if span > 0 else None

    def clear(self) -> None:
        self._packets.clear()
        self._keyframes.clear()
        self._samples.clear()
