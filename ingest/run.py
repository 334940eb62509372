"""Run one worker in the foreground until SIGINT or SIGTERM, then stop it gracefully."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from ingest.worker import IngestWorker

log = logging.getLogger(__name__)


def serve(worker: IngestWorker, stop_timeout: float = 30.0) -> None:
    """Start `worker`, block until SIGINT/SIGTERM, then `worker.stop()` (must run on the main thread)."""
    stop = threading.Event()

    def _signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.start()
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        worker.stop(stop_timeout)
