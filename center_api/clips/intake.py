"""An uploaded clip, from the request body to a row and a file: checked, fitted into its station's quota,
linked to its alerts; and a worker's report of a clip it cannot make.

`ClipIntake.upload` streams the body to a temporary file while hashing it (`ClipStore.receive`), refuses what
is not what the path and meta say (`ClipRefused` 400, `NotMp4` 415, `ClipTooLarge` 413), then files it under
one lock: a digest already stored is only used again (its new alert ids linked: idempotent); a new one must
fit its station's quota (`clip_station_quota_bytes`), first by evicting the station's least recently used
clips that no open incident references, else it is refused (`ClipQuotaExceeded` 507) and its alerts say
"station clip quota reached". The lock orders the quota decisions of one replica; replicas sharing a
database may each admit one clip past the quota at the same moment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center_api.cameras.registry import CameraRegistry
from center_api.clips.files import ClipStore, ClipTooLargeError, Received
from center_api.errors import BadRequest, InsufficientStorage, PayloadTooLarge, UnsupportedMediaType
from center_api.metrics import CenterMetrics
from center_api.store import clips as index
from center_api.store.incidents import IncidentWriter, StoredEvent
from center_api.store.models import Clip
from contracts import ClipFailure, ClipMeta

log = logging.getLogger(__name__)

UNASSIGNED = "unassigned"  # the quota bucket of a clip whose camera and incident the center does not know
QUOTA_REASON = "station clip quota reached"
EVICTED_REASON = "clip deleted to make room in the station's clip quota"
MAX_EVICTION_CANDIDATES = 10_000  # least recently used clips considered for one upload


class ClipRefused(BadRequest, code="clip_refused"):
    """An upload whose body is not what its path and meta say (digest_mismatch, size_mismatch)."""


class ClipTooLarge(PayloadTooLarge, code="clip_too_large"):
    """A clip over clip_max_bytes."""


class NotMp4(UnsupportedMediaType, code="not_mp4"):
    """A body that is not an MP4 (no `ftyp` box at its start)."""


class ClipQuotaExceeded(InsufficientStorage, code="clip_quota_exceeded"):
    """The station's clips fill its quota and none may be evicted."""


@dataclass
class Filed:
    """What filing an upload did."""

    digest: str
    station: str
    incidents: list[int] = field(default_factory=list)
    created: bool = False
    refused: bool = False
    evicted: list[tuple[str, int]] = field(default_factory=list)
    events: list[StoredEvent] = field(default_factory=list)


class ClipIntake:
    def __init__(
        self,
        *,
        store: ClipStore,
        sessions: async_sessionmaker[AsyncSession],
        writer: IncidentWriter,
        cameras: CameraRegistry,
        metrics: CenterMetrics,
        max_bytes: int,
        quota_bytes: int,
    ) -> None:
        self.store = store
        self._sessions = sessions
        self._writer = writer
        self._cameras = cameras
        self._metrics = metrics
        self.max_bytes = max_bytes
        self.quota_bytes = quota_bytes
        self._lock = asyncio.Lock()

    def refuse(self, reason: str) -> None:
        self._metrics.clips_refused.labels(reason).inc()

    async def upload(
        self, claimed: str, meta: ClipMeta, chunks: AsyncIterator[bytes], now: datetime
    ) -> Filed:
        """Receive, check and file one clip. Raises the refusals above; a quota refusal only after its
        notes are committed (the caller publishes `Filed.events` first: see `raise_if_refused`)."""
        try:
            received = await self.store.receive(claimed, chunks, self.max_bytes)
        except ClipTooLargeError as exc:
            self.refuse("too_large")
            raise ClipTooLarge(str(exc)) from None
        try:
            refusal = received.refusal(claimed, meta.bytes)
            if refusal is not None:
                code, message = refusal
                self.refuse(code)
                raise (NotMp4 if code == "not_mp4" else ClipRefused)(message, code=code)
            record = await self._cameras.get(meta.camera_id)
            async with self._lock:
                filed = await self._file(received, meta, record.station_id if record else None, now)
        finally:
            await asyncio.to_thread(self.store.discard, received.tmp)  # gone already once placed
        await self._after(filed)
        return filed

    async def _file(self, received: Received, meta: ClipMeta, station: str | None, now: datetime) -> Filed:
        offsets = dict(zip(meta.alert_ids, meta.alert_offsets_s, strict=True))
        for attempt in range(3):
            try:
                async with self._sessions() as session, session.begin():
                    return await self._file_in(session, received, meta, offsets, station, now)
            except IntegrityError as exc:  # the consumer noted one of these alerts at the same moment
                if attempt == 2:
                    raise
                log.info("clip %s raced another writer, retrying: %s", received.digest, exc.orig)
        raise AssertionError("unreachable")

    async def _file_in(
        self,
        session: AsyncSession,
        received: Received,
        meta: ClipMeta,
        offsets: dict[str, float],
        station: str | None,
        now: datetime,
    ) -> Filed:
        digest = received.digest
        clip = await session.get(Clip, digest)
        if clip is not None:
            clip.last_used_at = now
            await self._place(received)  # only if the file was lost: this is its content
            return await self._linked(session, Filed(digest, clip.station_id), offsets, now)
        bucket = station or await index.station_of_refs(session, meta.alert_ids) or UNASSIGNED
        filed = Filed(digest, bucket, created=True)
        need = await index.station_usage(session, bucket) + received.size - self.quota_bytes
        if need > 0:
            candidates = await index.evictable(session, station_id=bucket, limit=MAX_EVICTION_CANDIDATES)
            for candidate in candidates:
                if need <= 0:
                    break
                filed.evicted.append(candidate)
                need -= candidate[1]
            if need > 0:
                filed.refused, filed.evicted = True, []
                incidents = await index.mark_unavailable(session, meta.alert_ids, QUOTA_REASON, now)
                filed.events = await self._writer.audit(
                    session, "clip_unavailable", incidents, now, note=QUOTA_REASON
                )
                return filed
            await index.forget(session, [d for d, _ in filed.evicted], EVICTED_REASON, now)
        await self._place(received)
        session.add(
            Clip(
                digest=digest,
                camera_id=meta.camera_id,
                station_id=bucket,
                size=received.size,
                started_at=meta.started_at,
                duration_s=meta.duration_s,
                codec=meta.codec,
                width=meta.width,
                height=meta.height,
                short_reason=meta.short_reason,
                worker_id=meta.worker_id,
                created_at=now,
                last_used_at=now,
            )
        )
        await session.flush()
        return await self._linked(session, filed, offsets, now)

    async def _place(self, received: Received) -> None:
        """Move the upload into place unless the content is there already (an earlier try of this
        transaction placed it, or the same clip is stored): content-addressed, so it is the same bytes."""
        if not await asyncio.to_thread(self.store.exists, received.digest):
            await asyncio.to_thread(self.store.place, received.tmp, received.digest)

    async def _linked(
        self, session: AsyncSession, filed: Filed, offsets: dict[str, float], now: datetime
    ) -> Filed:
        linked = await index.link(session, filed.digest, offsets, now)
        filed.incidents = linked.incidents
        filed.events = await self._writer.audit(session, "clip_added", linked.new_incidents, now)
        return filed

    async def _after(self, filed: Filed) -> None:
        """Once committed: the evicted files go, and the metrics say where the station stands."""
        m, station = self._metrics, filed.station
        if filed.evicted:
            freed = 0
            for digest, _ in filed.evicted:
                freed += await asyncio.to_thread(self.store.delete, digest)
            m.clips_evicted.inc(len(filed.evicted))
            m.clip_bytes_freed.inc(freed)
            log.info("clip quota of %s: evicted %d clips, %d bytes", station, len(filed.evicted), freed)
        if filed.refused:
            self.refuse("quota")
            log.warning("clip %s refused: %s for %s", filed.digest, QUOTA_REASON, station)
        else:
            m.clips_stored.labels("stored" if filed.created else "duplicate").inc()
        m.clip_quota_reached.labels(station).set(1 if filed.refused else 0)
        m.clip_quota_bytes.labels(station).set(self.quota_bytes)
        async with self._sessions() as session:
            m.clip_bytes.labels(station).set(await index.station_usage(session, station))

    def raise_if_refused(self, filed: Filed) -> None:
        if filed.refused:
            raise ClipQuotaExceeded(
                f"{QUOTA_REASON} for {filed.station} (clip_station_quota_bytes {self.quota_bytes}); "
                "no clip of a closed incident is left to evict",
                code="clip_quota_exceeded",
            )

    async def failure(self, report: ClipFailure, now: datetime) -> tuple[list[int], list[StoredEvent]]:
        """A worker cannot deliver a clip it promised: its alerts say why. The incidents and events."""
        async with self._sessions() as session, session.begin():
            incidents = await index.mark_unavailable(session, report.alert_ids, report.reason, now)
            events = await self._writer.audit(session, "clip_unavailable", incidents, now, note=report.reason)
        self._metrics.clip_failures.inc(len(report.alert_ids))
        log.info(
            "camera %s: no clip for %d alerts (%s)", report.camera_id, len(report.alert_ids), report.reason
        )
        return sorted(incidents), events

    async def refresh_gauges(self, stations: list[str]) -> None:
        """Clip bytes and quota of every station (and every bucket that holds clips)."""
        async with self._sessions() as session:
            usage = await index.usage_by_station(session)
        for station in sorted({*stations, UNASSIGNED, *usage}):
            self._metrics.clip_bytes.labels(station).set(usage.get(station, 0))
            self._metrics.clip_quota_bytes.labels(station).set(self.quota_bytes)
