"""Prometheus metrics of one ingest worker, served from its own registry on `metrics_port`.

Values are read when Prometheus scrapes (a custom collector): nothing is counted per frame. The collector
reads a `WorkerStatus` (worker id, health records, typed stream counters), which `IngestWorker` provides;
the composition root (`ingest.run.serve`) builds the server with it and any other collectors of the process
(detection's), so one scrape shows the whole worker and this module never imports the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from contracts import CameraState, StreamHealth

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamCounters:
    """Running totals of one camera's reader."""

    decode_cpu_s: float  # CPU seconds spent decoding and converting
    samples: int  # samples handed to the frame sink
    mode: str  # `SamplingMode` value: what the reader decodes


@dataclass(frozen=True, slots=True)
class ClipCounters:
    """Running totals of a worker's clip recorder and the budget of its pre-roll rings."""

    clips: int = 0  # clips cut and handed to the spool
    clip_seconds: float = 0.0  # their total duration
    cut_cpu_s: float = 0.0  # CPU seconds spent remuxing them
    failures: int = 0  # clips promised (or asked for) and not made
    unavailable: int = 0  # alerts told that no clip will come
    recording: int = 0  # recordings open now
    recording_bytes: int = 0  # reserved by recordings now (bounded by the ring budget's size)
    budget_bytes: int = 0  # the worker-wide bound of all rings (0: no rings)
    budget_used_bytes: int = 0  # reserved by the rings now


class WorkerStatus(Protocol):
    """What the metrics read of a worker."""

    @property
    def worker_id(self) -> str: ...

    def health(self) -> Mapping[str, StreamHealth]: ...

    def stream_counters(self) -> Mapping[str, StreamCounters]: ...


@runtime_checkable
class ClipStatus(Protocol):
    """What the metrics read of a worker that records clips (`IngestWorker` is one; None: clips off)."""

    def clip_counters(self) -> ClipCounters | None: ...


class WorkerCollector(Collector):
    def __init__(self, worker: WorkerStatus) -> None:
        self.worker = worker

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        wid = self.worker.worker_id
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
            "Samples the frame sink dropped (replaced by a newer one or gone stale before detection)",
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
        ring = GaugeMetricFamily(
            "gridwatch_ingest_ring_bytes", "Bytes held by the camera's pre-roll ring", labels=["camera"]
        )
        ring_seconds = GaugeMetricFamily(
            "gridwatch_ingest_ring_seconds",
            "Seconds of video held by the camera's pre-roll ring",
            labels=["camera"],
        )
        for cid, row in health.items():
            if row.ring_bytes is not None:
                ring.add_metric([cid], row.ring_bytes)
                ring_seconds.add_metric([cid], row.preroll_s or 0.0)
            rate.add_metric([cid], row.sample_fps or 0.0)
            if row.fps is not None:
                fps.add_metric([cid], row.fps)
            if row.last_frame_at is not None:
                age.add_metric([cid], max(0.0, (now - row.last_frame_at).total_seconds()))
            drops.add_metric([cid], row.dropped_samples)
            reconnects.add_metric([cid], row.reconnects)
            c = counters.get(cid)
            if c is not None:
                cpu.add_metric([cid, c.mode], c.decode_cpu_s)
                samples.add_metric([cid], c.samples)
        yield from (rate, fps, age, drops, reconnects, cpu, samples, ring, ring_seconds)
        clips = self.worker.clip_counters() if isinstance(self.worker, ClipStatus) else None
        if clips is not None:
            yield from _clip_metrics(wid, clips, sum(r.ring_bytes or 0 for r in health.values()))


def _clip_metrics(
    wid: str, c: ClipCounters, ring_total: int
) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The worker's clip recorder and the budget of its rings."""
    gauges: tuple[tuple[str, str, float], ...] = (
        ("gridwatch_ingest_rings_bytes", "Bytes held by all pre-roll rings of the worker", ring_total),
        ("gridwatch_ingest_ring_budget_bytes", "Bound of all pre-roll rings of the worker", c.budget_bytes),
        (
            "gridwatch_ingest_ring_budget_used_bytes",
            "Bytes of the ring budget reserved now",
            c.budget_used_bytes,
        ),
        ("gridwatch_ingest_clips_recording", "Clip recordings open now", c.recording),
        ("gridwatch_ingest_clips_recording_bytes", "Bytes held by clip recordings now", c.recording_bytes),
    )
    counters: tuple[tuple[str, str, float], ...] = (
        ("gridwatch_ingest_clips", "Clips cut and spooled", c.clips),
        ("gridwatch_ingest_clip_seconds", "Seconds of video in the clips cut", c.clip_seconds),
        ("gridwatch_ingest_clip_cut_cpu_seconds", "CPU seconds spent remuxing clips", c.cut_cpu_s),
        ("gridwatch_ingest_clip_failures", "Clips promised or asked for and not made", c.failures),
        ("gridwatch_ingest_clips_unavailable", "Alerts told that no clip will come", c.unavailable),
    )
    for name, doc, value in gauges:
        gauge = GaugeMetricFamily(name, doc, labels=["worker"])
        gauge.add_metric([wid], value)
        yield gauge
    for name, doc, value in counters:
        counter = CounterMetricFamily(name, doc, labels=["worker"])
        counter.add_metric([wid], value)
        yield counter


class MetricsServer:
    """An HTTP server for one worker's own registry (several workers in a process never collide)."""

    def __init__(self, collectors: Iterable[Collector], host: str, port: int, name: str = "worker") -> None:
        self.registry = CollectorRegistry()
        for collector in collectors:
            self.registry.register(collector)
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self._server.server_port)
        log.info("%s: metrics on http://%s:%d/metrics", name, host, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
