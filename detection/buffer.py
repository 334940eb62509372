"""The one slot per camera between ingest's readers and the detector: the latest frame per camera wins.

`put` never blocks (readers call it on their own threads): a newer frame of the same camera replaces the
waiting one (counted as `replaced`). `take` hands out up to B frames, oldest waiting first, and drops (and
counts as `stale`) frames that waited past `max_age_s`: a late frame is worth less than the next one, so stale
frames are never queued. Both kinds of drop are also counted per camera (`dropped`), once each, for the
camera's health record.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from contracts.frames import Frame


@dataclass
class BufferCounts:
    accepted: int = 0
    replaced: int = 0
    stale: int = 0
    taken: int = 0


class LatestFrameBuffer:
    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._frames: OrderedDict[str, tuple[float, Frame]] = OrderedDict()
        self._dropped: dict[str, int] = {}
        self._cond = threading.Condition()
        self._closed = False
        self.counts = BufferCounts()

    def __len__(self) -> int:
        with self._cond:
            return len(self._frames)

    def put(self, frame: Frame) -> None:
        with self._cond:
            cid = frame.camera_id
            if cid in self._frames:
                del self._frames[cid]  # re-inserted at the end: arrival order stays fair
                self.counts.replaced += 1
                self._dropped[cid] = self._dropped.get(cid, 0) + 1
            self._frames[cid] = (self._clock(), frame)
            self.counts.accepted += 1
            self._cond.notify()

    def dropped(self, camera_id: str) -> int:
        """Frames of `camera_id` replaced or gone stale before `take` (since it was last discarded)."""
        with self._cond:
            return self._dropped.get(camera_id, 0)

    def discard(self, camera_ids: Iterable[str]) -> None:
        """Forget cameras no longer watched: their waiting frame and their drop count."""
        with self._cond:
            for cid in camera_ids:
                self._frames.pop(cid, None)
                self._dropped.pop(cid, None)

    def take(self, max_frames: int, timeout: float) -> list[Frame]:
        """Up to `max_frames` fresh frames (one per camera), waiting up to `timeout` s for the first one."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                self._drop_stale()
                if self._frames or self._closed:
                    break
                left = deadline - self._clock()
                if left <= 0:
                    return []
                self._cond.wait(left)
            batch: list[Frame] = []
            while self._frames and len(batch) < max_frames:
                _, (_, frame) = self._frames.popitem(last=False)
                batch.append(frame)
            self.counts.taken += len(batch)
            return batch

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False

    def _drop_stale(self) -> None:
        now = self._clock()
        for cid in [cid for cid, (at, _) in self._frames.items() if now - at > self.max_age_s]:
            del self._frames[cid]
            self.counts.stale += 1
            self._dropped[cid] = self._dropped.get(cid, 0) + 1
