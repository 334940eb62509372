"""Prometheus metrics of detection, read from the pipeline and publisher counters when Prometheus scrapes.

The caller registers it: `registry.register(DetectionCollector(pipeline, publisher))`. Frames the buffer
dropped (replaced or stale) are not repeated here: the pipeline reports them per camera through
`FrameSink.dropped`, and the ingest worker exports them once, as `gridwatch_ingest_dropped_samples_total`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from detection.pipeline import DetectionPipeline
    from detection.publisher import RedisAlertPublisher


class DetectionCollector(Collector):
    def __init__(self, pipeline: DetectionPipeline, publisher: RedisAlertPublisher | None = None) -> None:
        self.pipeline, self.publisher = pipeline, publisher

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        wid = self.pipeline.config.worker_id
        counts = self.pipeline.stats()
        frames = CounterMetricFamily(
            "gridwatch_detection_frames", "Sampled frames by outcome", labels=["worker", "outcome"]
        )
        for outcome, value in (
            ("submitted", counts.submitted),
            ("unknown_camera", counts.unknown_camera),
            ("processed", counts.processed),
            ("inferred", counts.inferred),
            ("gated", counts.gated),
        ):
            frames.add_metric([wid, outcome], value)
        yield frames
        gate = CounterMetricFamily(
            "gridwatch_detection_gate_decisions",
            "Motion gate decisions by reason",
            labels=["worker", "reason"],
        )
        for reason, value in counts.gate_reasons.items():
            gate.add_metric([wid, reason], value)
        yield gate
        calls = CounterMetricFamily("gridwatch_detection_detector_calls", "Detector calls", labels=["worker"])
        calls.add_metric([wid], counts.detector_calls)
        yield calls
        seconds = CounterMetricFamily(
            "gridwatch_detection_detector_seconds", "Wall seconds inside the detector", labels=["worker"]
        )
        seconds.add_metric([wid], counts.detector_seconds)
        yield seconds
        alerts = CounterMetricFamily("gridwatch_detection_alerts", "Alerts raised", labels=["worker"])
        alerts.add_metric([wid], counts.alerts)
        yield alerts
        errors = CounterMetricFamily("gridwatch_detection_errors", "Batches that failed", labels=["worker"])
        errors.add_metric([wid], counts.errors)
        yield errors
        waiting = GaugeMetricFamily(
            "gridwatch_detection_waiting_frames", "Frames in the buffer", labels=["worker"]
        )
        waiting.add_metric([wid], len(self.pipeline.buffer))
        yield waiting
        if self.publisher is None:
            return
        pub = self.publisher.counts
        journal = self.publisher.journal
        delivered = CounterMetricFamily(
            "gridwatch_alert_delivery", "Alert delivery by outcome", labels=["worker", "outcome"]
        )
        for outcome, value in (
            ("sent", pub.sent),
            ("journaled", pub.journaled),
            ("replayed", pub.replayed),
            ("duplicate", pub.duplicates),
            ("failed", pub.failed),
            ("dropped_alert", journal.dropped_alerts),
            ("dropped_snapshot", journal.dropped_snapshots),
        ):
            delivered.add_metric([wid, outcome], value)
        yield delivered
        depth = GaugeMetricFamily(
            "gridwatch_alert_journal_entries", "Alerts waiting on disk", labels=["worker"]
        )
        depth.add_metric([wid], len(journal))
        yield depth
        up = GaugeMetricFamily("gridwatch_alert_bus_up", "1 when Redis takes alerts", labels=["worker"])
        up.add_metric([wid], 1 if self.publisher.connected else 0)
        yield up
