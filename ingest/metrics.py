"""Prometheus metrics of one ingest worker, served from its own registry on `metrics_port`.

Values are read from the worker when Prometheus scrapes (a custom collector): nothing is counted per frame.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from contracts import CameraState

if TYPE_CHECKING:
    from ingest.worker import IngestWorker

log = logging.getLogger(__name__)


class WorkerCollector(Collector):
    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        wid = self.worker.config.worker_id
        health = self.worker.health()
        counters = self.worker.stream_counters()
        now = datetime.now(UTC)
        states = GaugeMetricFamily("gridwatch_ingest_cameras", "Cameras by state", labels=["worker", "state"])
        by_state = {s.value: 0 for s in CameraState}
        for row in health.values():
            by_state[row.state.value] += 1
        for state, n in by_state.items():
            states.add_metric([wid, state], n)
        yield states
        rate = GaugeMetricFamily(
            "gridwatch_ingest_sample_rate", "Samples per second handed on", labels=["camera"]
        )
        fps = GaugeMetricFamily(
            "gridwatch_ingest_stream_fps", "Measured stream frame rate", labels=["camera"]
        )
        age = GaugeMetricFamily(
            "gridwatch_ingest_frame_age_seconds", "Age of the newest sample", labels=["camera"]
        )
        drops = CounterMetricFamily(
            "gridwatch_ingest_dropped_samples",
            "Samples replaced before the sink took them",
            labels=["camera"],
        )
        reconnects = CounterMetricFamily(
            "gridwatch_ingest_reconnects", "Reconnect attempts", labels=["camera"]
        )
        cpu = CounterMetricFamily(
            "gridwatch_ingest_decode_cpu_seconds",
            "CPU seconds spent decoding and converting",
            labels=["camera", "mode"],
        )
        samples = CounterMetricFamily("gridwatch_ingest_samples", "Samples handed on", labels=["camera"])
        for cid, row in health.items():
            rate.add_metric([cid], row.sample_fps or 0.0)
            if row.fps is not None:
                fps.add_metric([cid], row.fps)
            if row.last_frame_at is not None:
                age.add_metric([cid], max(0.0, (now - row.last_frame_at).total_seconds()))
            drops.add_metric([cid], row.dropped_samples)
            reconnects.add_metric([cid], row.reconnects)
            c = counters.get(cid)
            if c is not None:
                cpu.add_metric([cid, c["mode"]], c["decode_cpu_s"])
                samples.add_metric([cid], c["samples"])
        yield from (rate, fps, age, drops, reconnects, cpu, samples)


class MetricsServer:
    """An HTTP server for one worker's own registry (several workers in a process never collide)."""

    def __init__(self, worker: IngestWorker, host: str, port: int) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(WorkerCollector(worker))
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self._server.server_port)
        log.info("worker %s: metrics on http://%s:%d/metrics", worker.config.worker_id, host, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
