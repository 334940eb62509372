"""Retention of evidence: snapshots and clips last used more than their retention ago are deleted, except the
evidence of open incidents (`new`, `acknowledged`, `dispatched`), which is kept however old.

Snapshots (`SnapshotSweeper`, `snapshot_retention_days`): read the digests that open incidents reference
(one query), then walk the store in a thread and delete old files not among them, plus temporary files an
interrupted write left behind. A snapshot put again gets a fresh mtime (`SnapshotStore.put`), so one still in
use is not swept; an incident created during the walk references a file that is fresh for the same reason.

Clips (`ClipSweeper`, `clip_retention_days`): the database says when each was last used (stored or uploaded
again) and which open incidents reference it, so the sweep deletes rows first, in batches (their alerts then
say the clip expired), and the files after each commit; then it walks the store for temporary files of
interrupted uploads and files no row names (a crash between placing a file and committing its row).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime
from typing import Generic, TypeVar

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center_api.blobs import ContentStore
from center_api.clips.files import ClipStore
from center_api.metrics import CenterMetrics
from center_api.snapshots import SnapshotStore, SweepResult
from center_api.store import clips as clip_index
from center_api.store.models import Clip, Incident
from center_api.workflow import OPEN_STATUSES

log = logging.getLogger(__name__)

DAY_S = 86_400.0
TMP_MAX_AGE_S = 3600.0  # a temporary file this old belongs to a write that crashed
CLIP_BATCH = 500  # clip rows deleted per transaction
EXPIRED_REASON = "clip expired under the retention policy"
StoreT = TypeVar("StoreT", bound=ContentStore)


async def open_snapshot_digests(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    """Digests of the snapshots that open incidents reference."""
    stmt = (
        select(Incident.snapshot)
        .where(Incident.status.in_([s.value for s in OPEN_STATUSES]), Incident.snapshot.is_not(None))
        .distinct()
    )
    async with sessions() as session:
        return {digest for digest in (await session.scalars(stmt)) if digest}


async def walk(store: ContentStore, keep: set[str], cutoff: float, tmp_cutoff: float) -> SweepResult:
    """`store.sweep` in a thread; cancelled (shutdown), the thread ends at the next file."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(store.sweep, keep, cutoff, tmp_cutoff, stop)
    except asyncio.CancelledError:
        stop.set()
        raise


def _report(what: str, result: SweepResult, deleted: Counter, freed: Counter) -> None:
    deleted.inc(result.deleted)
    freed.inc(result.bytes_freed)
    if result.deleted or result.tmp_removed:
        log.info(
            "%s retention: deleted %d %ss and %d stale temporary or orphan files, %d bytes freed",
            what,
            result.deleted,
            what,
            result.tmp_removed,
            result.bytes_freed,
        )
    if result.failed:
        log.warning("%s retention: %d files not deleted, e.g. %s", what, result.failed, result.first_error)


class _Sweeper(Generic[StoreT]):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: StoreT,
        metrics: CenterMetrics,
        retention_days: float,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._metrics = metrics
        self._retention_s = retention_days * DAY_S


class SnapshotSweeper(_Sweeper[SnapshotStore]):
    async def run(self, now: float) -> SweepResult:
        """One sweep at `now` (epoch seconds). Retention 0 keeps everything: nothing is read or deleted."""
        if self._retention_s <= 0:
            return SweepResult()
        keep = await open_snapshot_digests(self._sessions)
        result = await walk(self._store, keep, now - self._retention_s, now - TMP_MAX_AGE_S)
        _report("snapshot", result, self._metrics.snapshots_deleted, self._metrics.snapshot_bytes_freed)
        return result


class ClipSweeper(_Sweeper[ClipStore]):
    async def run(self, now: float) -> SweepResult:
        """One sweep at `now` (epoch seconds). Retention 0 keeps every clip; stale temporary files and files
        no row names still go."""
        result = SweepResult()
        if self._retention_s > 0:
            await self._expire(now, result)
        async with self._sessions() as session:
            keep = set(await session.scalars(select(Clip.digest)))
        # Only files an hour old: a file placed just now may be waiting for its row's commit.
        orphans = await walk(self._store, keep, now - TMP_MAX_AGE_S, now - TMP_MAX_AGE_S)
        result.tmp_removed += orphans.tmp_removed + orphans.deleted
        result.bytes_freed += orphans.bytes_freed
        result.failed += orphans.failed
        result.first_error = result.first_error or orphans.first_error
        _report("clip", result, self._metrics.clips_deleted, self._metrics.clip_bytes_freed)
        return result

    async def _expire(self, now: float, result: SweepResult) -> None:
        cutoff = datetime.fromtimestamp(now - self._retention_s, UTC)
        at = datetime.fromtimestamp(now, UTC)
        while True:
            async with self._sessions() as session, session.begin():
                batch = await clip_index.evictable(session, used_before=cutoff, limit=CLIP_BATCH)
                await clip_index.forget(session, [d for d, _ in batch], EXPIRED_REASON, at)
            for digest, _ in batch:
                result.bytes_freed += await asyncio.to_thread(self._store.delete, digest)
            result.deleted += len(batch)
            if len(batch) < CLIP_BATCH:
                return
