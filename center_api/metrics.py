"""Prometheus metrics of one app instance (own registry, so several apps can live in one process)."""

from __future__ import annotations

from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class CenterMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        counter = partial(Counter, registry=r)
        gauge = partial(Gauge, registry=r)
        latency = partial(Histogram, buckets=_LATENCY, registry=r)
        self.alerts_consumed = counter(
            "gridwatch_center_alerts_consumed", "Alerts stored (rate() = alerts/s)"
        )
        self.alerts_dead = counter("gridwatch_center_alerts_dead", "Entries sent to gw:alerts:dead")
        self.alerts_claimed = counter(
            "gridwatch_center_alerts_claimed", "Entries claimed from idle consumers"
        )
        self.consumers_reaped = counter(
            "gridwatch_center_consumers_reaped", "Dead consumers removed from the group"
        )
        self.entries_trimmed = counter(
            "gridwatch_center_entries_trimmed",
            "Stream entries every group had acknowledged, trimmed after stream_keep_acked_s",
        )
        self.consumer_lag = gauge("gridwatch_center_consumer_lag", "Entries not yet delivered to the group")
        self.pending = gauge("gridwatch_center_pending_entries", "Delivered but unacknowledged entries")
        self.locate_seconds = latency("gridwatch_center_locate_seconds", "Locate and route one batch")
        self.commit_seconds = latency(
            "gridwatch_center_commit_seconds",
            "Store one batch (one transaction)",
        )
        self.feed_seconds = latency(
            "gridwatch_center_feed_seconds",
            "Publish to hand-over to local feed clients (~0 for own events; others' from their send time)",
        )
        self.open_incidents = gauge("gridwatch_center_open_incidents", "Open incidents", ["station"])
        self.feed_clients = gauge("gridwatch_center_feed_clients", "Connected feed clients", ["transport"])
        self.feed_dropped = counter("gridwatch_center_feed_clients_dropped", "Slow feed clients dropped")
        self.feed_refused = counter(
            "gridwatch_center_feed_clients_refused",
            "Feed connections refused: the token subject already holds feed_clients_per_subject",
        )
        self.token_failures = counter(
            "gridwatch_center_token_failures", "Bad tokens presented (counted against the client address)"
        )
        self.addresses_refused = counter(
            "gridwatch_center_addresses_refused",
            "Client addresses refused for token_block_s after too many failed token checks",
        )
        self.feed_received = counter(
            "gridwatch_center_feed_received",
            "Messages read from the feed channels: delivered (another replica's), own (ignored), malformed",
            ["outcome"],
        )
        self.escalated = counter("gridwatch_center_incidents_escalated", "Incidents escalated")
        self.snapshots_deleted = counter(
            "gridwatch_center_snapshots_deleted", "Snapshots deleted by the retention sweep"
        )
        self.snapshot_bytes_freed = counter(
            "gridwatch_center_snapshot_bytes_freed",
            "Bytes freed by the retention sweep (snapshots and stale temporary files)",
        )
        self.clip_bytes = gauge(
            "gridwatch_center_clip_bytes", "Bytes of the clips stored, by station (quota bucket)", ["station"]
        )
        self.clip_quota_bytes = gauge(
            "gridwatch_center_clip_quota_bytes",
            "The clip quota of each station (clip_station_quota_bytes)",
            ["station"],
        )
        self.clip_quota_reached = gauge(
            "gridwatch_center_clip_quota_reached",
            "1 once a clip of the station was refused for its quota (after eviction), 0 once one fits again",
            ["station"],
        )
        self.clips_stored = counter(
            "gridwatch_center_clips_stored",
            "Clip uploads accepted: stored (new) or duplicate (the same digest again, linked)",
            ["outcome"],
        )
        self.clips_refused = counter(
            "gridwatch_center_clips_refused",
            "Clip uploads refused, by reason (digest_mismatch, size_mismatch, not_mp4, too_large, bad_meta, "
            "quota)",
            ["reason"],
        )
        self.clips_evicted = counter(
            "gridwatch_center_clips_evicted", "Clips deleted to make room in their station's quota"
        )
        self.clips_deleted = counter("gridwatch_center_clips_deleted", "Clips deleted by the retention sweep")
        self.clip_bytes_freed = counter(
            "gridwatch_center_clip_bytes_freed",
            "Bytes freed by quota eviction and the retention sweep (clips, stale temporary and orphan files)",
        )
        self.clip_failures = counter(
            "gridwatch_center_clip_failures", "Alerts whose clip a worker reported it cannot deliver"
        )
        self.clip_requests = counter(
            "gridwatch_center_clip_requests", "On-demand clip requests sent to the workers"
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
