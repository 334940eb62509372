"""Prometheus metrics of one app instance (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class CenterMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.alerts_consumed = Counter(
            "gridwatch_center_alerts_consumed", "Alerts stored (rate() = alerts/s)", registry=r
        )
        self.alerts_dead = Counter(
            "gridwatch_center_alerts_dead", "Entries sent to gw:alerts:dead", registry=r
        )
        self.alerts_claimed = Counter(
            "gridwatch_center_alerts_claimed", "Entries claimed from idle consumers", registry=r
        )
        self.consumers_reaped = Counter(
            "gridwatch_center_consumers_reaped", "Dead consumers removed from the group", registry=r
        )
        self.consumer_lag = Gauge(
            "gridwatch_center_consumer_lag", "Entries not yet delivered to the group", registry=r
        )
        self.pending = Gauge(
            "gridwatch_center_pending_entries", "Delivered but unacknowledged entries", registry=r
        )
        self.locate_seconds = Histogram(
            "gridwatch_center_locate_seconds", "Locate and route one batch", buckets=_LATENCY, registry=r
        )
        self.commit_seconds = Histogram(
            "gridwatch_center_commit_seconds",
            "Store one batch (one transaction)",
            buckets=_LATENCY,
            registry=r,
        )
        self.feed_seconds = Histogram(
            "gridwatch_center_feed_seconds",
            "Publish to hand-over to local feed clients (~0 for own events; others' from their send time)",
            buckets=_LATENCY,
            registry=r,
        )
        self.open_incidents = Gauge(
            "gridwatch_center_open_incidents", "Open incidents", ["station"], registry=r
        )
        self.feed_clients = Gauge(
            "gridwatch_center_feed_clients", "Connected feed clients", ["transport"], registry=r
        )
        self.feed_dropped = Counter(
            "gridwatch_center_feed_clients_dropped", "Slow feed clients dropped", registry=r
        )
        self.feed_received = Counter(
            "gridwatch_center_feed_received",
            "Messages read from the feed channels: delivered (another replica's), own (ignored), malformed",
            ["outcome"],
            registry=r,
        )
        self.escalated = Counter("gridwatch_center_incidents_escalated", "Incidents escalated", registry=r)
        self.snapshots_deleted = Counter(
            "gridwatch_center_snapshots_deleted", "Snapshots deleted by the retention sweep", registry=r
        )
        self.snapshot_bytes_freed = Counter(
            "gridwatch_center_snapshot_bytes_freed",
            "Bytes freed by the retention sweep (snapshots and stale temporary files)",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
