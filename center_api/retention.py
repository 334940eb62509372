"""Snapshot retention: delete snapshot files last used more than `snapshot_retention_days` ago, except the
evidence of open incidents (`new`, `acknowledged`, `dispatched`), which is kept however old.

One sweep: read the digests that open incidents reference (one query), then walk the store in a thread and
delete old files not among them, plus temporary files an interrupted write left behind. A snapshot put again
gets a fresh mtime (`SnapshotStore.put`), so one still in use is not swept; an incident created during the
walk references a file that is fresh for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center_api.metrics import CenterMetrics
from center_api.snapshots import SnapshotStore, SweepResult
from center_api.store.models import Incident
from center_api.workflow import OPEN_STATUSES

log = logging.getLogger(__name__)

DAY_S = 86_400.0
TMP_MAX_AGE_S = 3600.0  # a temporary file this old belongs to a write that crashed


async def open_snapshot_digests(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    """Digests of the snapshots that open incidents reference."""
    stmt = (
        select(Incident.snapshot)
        .where(Incident.status.in_([s.value for s in OPEN_STATUSES]), Incident.snapshot.is_not(None))
        .distinct()
    )
    async with sessions() as session:
        return {digest for digest in (await session.scalars(stmt)) if digest}


class SnapshotSweeper:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: SnapshotStore,
        metrics: CenterMetrics,
        retention_days: float,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._metrics = metrics
        self._retention_s = retention_days * DAY_S

    async def run(self, now: float) -> SweepResult:
        """One sweep at `now` (epoch seconds). Retention 0 keeps everything: nothing is read or deleted."""
        if self._retention_s <= 0:
            return SweepResult()
        keep = await open_snapshot_digests(self._sessions)
        stop = threading.Event()
        try:
            result = await asyncio.to_thread(
                self._store.sweep, keep, now - self._retention_s, now - TMP_MAX_AGE_S, stop
            )
        except asyncio.CancelledError:
            stop.set()  # shutdown: let the thread end at the next file instead of walking on
            raise
        self._report(result)
        return result

    def _report(self, result: SweepResult) -> None:
        self._metrics.snapshots_deleted.inc(result.deleted)
        self._metrics.snapshot_bytes_freed.inc(result.bytes_freed)
        if result.deleted or result.tmp_removed:
            log.info(
                "snapshot retention: deleted %d snapshots and %d stale temporary files, %d bytes freed",
                result.deleted,
                result.tmp_removed,
                result.bytes_freed,
            )
        if result.failed:
            log.warning(
                "snapshot retention: %d files not deleted, e.g. %s", result.failed, result.first_error
            )
