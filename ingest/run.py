"""Run one worker in the foreground until SIGINT or SIGTERM, then stop it gracefully.

`serve` is where a worker meets its metrics: with `metrics_port` set it serves the worker's collector and the
caller's (detection's, in `gridwatch ingest`) from one registry, for as long as the worker runs.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from prometheus_client.registry import Collector

from ingest.metrics import MetricsServer, WorkerCollector
from ingest.worker import IngestWorker

log = logging.getLogger(__name__)


def serve(worker: IngestWorker, stop_timeout: float = 30.0, collectors: Sequence[Collector] = ()) -> None:
    """Start `worker` (and its metrics server when `metrics_port` is set), block until SIGINT/SIGTERM, then
    `worker.stop()` and close the metrics (must run on the main thread). `collectors` are served beside the
    worker's own."""
    stop = threading.Event()

    def _signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    metrics: MetricsServer | None = None
    config = worker.config
    try:
        worker.start()
        if config.metrics_port is not None:
            metrics = MetricsServer(
                [WorkerCollector(worker), *collectors],
                config.metrics_host,
                config.metrics_port,
                name=f"worker {config.worker_id}",
            )
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        worker.stop(stop_timeout)
        if metrics is not None:
            metrics.close()
