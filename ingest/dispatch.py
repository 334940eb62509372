"""Between readers and the frame sink: one slot per camera, newest sample wins, drops counted.

Readers never wait on the sink. A reader `put`s its sample into its camera's slot (replacing an unconsumed
older one, which counts as a drop) and goes back to the network; one dispatcher thread hands the slots'
frames to `FrameSink.submit` in arrival order. A slow or stuck sink therefore costs memory of one frame per
camera, never buffering in a reader.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from contracts import Frame, FrameSink

log = logging.getLogger(__name__)


class LatestFrameDispatcher:
    def __init__(self, sink: FrameSink, name: str = "ingest-dispatch") -> None:
        self.sink = sink
        self._slots: OrderedDict[str, Frame] = OrderedDict()
        self._cond = threading.Condition()
        self._dropped: dict[str, int] = {}
        self._submitted = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._closed:
                return
            if frame.camera_id in self._slots:
                self._dropped[frame.camera_id] = self._dropped.get(frame.camera_id, 0) + 1
                del self._slots[frame.camera_id]  # re-insert at the end: arrival order of the newest
            self._slots[frame.camera_id] = frame
            self._cond.notify()

    def discard(self, camera_id: str) -> None:
        """Forget a camera that this worker no longer reads (its pending frame and its drop count)."""
        with self._cond:
            self._slots.pop(camera_id, None)
            self._dropped.pop(camera_id, None)

    def dropped(self, camera_id: str) -> int:
        with self._cond:
            return self._dropped.get(camera_id, 0)

    @property
    def submitted(self) -> int:
        return self._submitted

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._slots)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._slots.clear()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._slots and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                _, frame = self._slots.popitem(last=False)
            try:
                self.sink.submit(frame)
                self._submitted += 1
            except Exception:  # a sink bug must not stop every camera of the worker; logged with camera id
                log.exception("frame sink failed on camera %s", frame.camera_id)
