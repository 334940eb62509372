"""Stream health in Redis: the worker writes `gw:health:<camera>` with a TTL; tools read and print it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import redis
from pydantic import ValidationError

from contracts import HEALTH_PREFIX, StreamHealth, health_key

if TYPE_CHECKING:
    from ingest.monitor import CameraMonitor
    from ingest.reader import StreamReader
    from ingest.ring import PacketRing

log = logging.getLogger(__name__)


class HealthWriter:
    """Writes health records with a TTL (a dead worker's records expire). Redis errors are logged once."""

    def __init__(self, redis_client: redis.Redis, ttl_s: float) -> None:
        self.redis = redis_client
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self._failing = False

    def write(self, rows: Iterable[StreamHealth]) -> bool:
        pipe = self.redis.pipeline(transaction=False)
        for row in rows:
            pipe.set(health_key(row.camera_id), row.model_dump_json(), px=self.ttl_ms)
        return self._run(pipe)

    def remove(self, camera_ids: Iterable[str]) -> bool:
        keys = [health_key(c) for c in camera_ids]
        if not keys:
            return True
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(*keys)
        return self._run(pipe)

    def read(self, camera_id: str) -> StreamHealth | None:
        try:
            raw = self.redis.get(health_key(camera_id))
        except redis.RedisError:
            return None
        if raw is None:
            return None
        try:
            return StreamHealth.model_validate_json(raw)
        except ValidationError:
            return None

    def _run(self, pipe: redis.client.Pipeline) -> bool:
        try:
            pipe.execute()
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("cannot write stream health to Redis: %s", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("writing stream health to Redis again")
        self._failing = False
        return True


def stream_health(
    camera_id: str,
    worker_id: str,
    reader: StreamReader,
    monitor: CameraMonitor,
    ring: PacketRing | None,
    *,
    last_frame_at: datetime | None,
    dropped: int,
    now: float,
    wall: datetime,
) -> StreamHealth:
    """One camera's health record from its reader, monitor and pre-roll ring (`now`: monotonic)."""
    stats = reader.stats
    return StreamHealth(
        camera_id=camera_id,
        state=monitor.state,
        reason=monitor.reason,
        worker_id=worker_id,
        last_frame_at=last_frame_at,
        fps=stats.fps if reader.connected else None,
        keyframe_interval=stats.keyframe_interval,
        bitrate_kbps=stats.bitrate_kbps if reader.connected else None,
        sample_fps=stats.sample_fps(now) or 0.0,
        width=reader.width,
        height=reader.height,
        codec=reader.codec,
        reconnects=monitor.reconnects,
        dropped_samples=dropped,
        last_error=monitor.last_error,
        preroll_s=round(ring.seconds_held, 2) if ring is not None else None,
        ring_bytes=ring.bytes_held if ring is not None else None,
        ring_limit_bytes=ring.max_bytes if ring is not None else None,
        ring_note=ring.note if ring is not None else None,
        updated_at=wall,
    )


def read_health(redis_client: redis.Redis) -> list[StreamHealth]:
    """Every live health record (SCAN over `gw:health:*`), sorted by camera id; bad records are skipped."""
    keys = sorted(redis_client.scan_iter(match=f"{HEALTH_PREFIX}*", count=1000))
    rows: list[StreamHealth] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for key, raw in zip(chunk, redis_client.mget(chunk), strict=True):
            if raw is None:
                continue  # expired between SCAN and MGET
            try:
                rows.append(StreamHealth.model_validate_json(raw))
            except ValidationError:
                log.warning("skipping unreadable health record %r", key)
    return sorted(rows, key=lambda r: r.camera_id)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _age(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    seconds = max(0.0, (now - at).total_seconds())
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


COLUMNS = (
    "camera",
    "state",
    "fps",
    "sample/s",
    "keyint",
    "kbps",
    "size",
    "frame age",
    "reconn",
    "drops",
    "worker",
    "last error / reason",
)


def format_health_table(rows: Iterable[StreamHealth], now: datetime | None = None) -> str:
    """A fixed-width table: state, fps, keyframe interval, bitrate, last frame age, reconnects, last error."""
    now = now or datetime.now(UTC)
    table = [COLUMNS]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
        size = f"{r.width}x{r.height}" if r.width and r.height else "-"
        text = r.reason if r.state.value != "online" and r.reason else (r.last_error or "")
        table.append(
            (
                r.camera_id,
                r.state.value,
                _num(r.fps, ".1f"),
                _num(r.sample_fps, ".2f"),
                _num(r.keyframe_interval, ".2f"),
                _num(r.bitrate_kbps, ".0f"),
                size,
                _age(r.last_frame_at, now),
                str(r.reconnects),
                str(r.dropped_samples),
                r.worker_id or "-",
                text[:60],
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no cameras"
    return "\n".join([*lines, f"({summary})"])
