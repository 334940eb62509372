"""An incident's clip state, worked out for a whole page of incidents in one query.

    present       at least one clip is linked (through an alert or on-demand request of the incident);
                  `reason` says why one is short, if the worker said so
    pending       a clip was promised and has neither arrived nor failed, for less than the pending timeout
                  since the center learnt of it
    unavailable   none will come: the worker's reason (no ring yet, the station's clip quota, ...), or that
                  none arrived within the timeout (a late arrival still makes it present)
    None          no clip was ever expected (stream-health alerts, workers without a clip recorder)

`summarize` is the rule (pure: `now` is passed in); `annotate` reads the notes of a page's incidents and
sets each `Incident.clip`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from center_api.store.models import NO_CLIP, Clip, ClipLink, ClipNoteRow, ClipSummary, Incident
from contracts import ClipState

_PENDING = ClipState.pending.value
_UNAVAILABLE = ClipState.unavailable.value


def summarize(
    linked: int,
    short_reason: str | None,
    pending_since: datetime | None,
    unavailable_reason: str | None,
    expected: int,
    now: datetime,
    timeout_s: float,
) -> ClipSummary:
    """The clip state of one incident from the aggregate of its notes (see the module's table)."""
    if linked:
        return ClipSummary(ClipState.present.value, short_reason)
    if pending_since is not None and now - pending_since < timedelta(seconds=timeout_s):
        return ClipSummary(_PENDING)
    if unavailable_reason is not None:
        return ClipSummary(_UNAVAILABLE, unavailable_reason)
    if pending_since is not None:
        return ClipSummary(_UNAVAILABLE, f"no clip arrived within {timeout_s:g} s of the alert")
    if expected:  # unavailable without a reason
        return ClipSummary(_UNAVAILABLE, "the worker could not record a clip")
    return NO_CLIP


async def summaries(
    session: AsyncSession, incident_ids: Iterable[int], now: datetime, timeout_s: float
) -> dict[int, ClipSummary]:
    """The clip state of each incident that has any clip note (the others have none), in one query."""
    ids = sorted(set(incident_ids))
    if not ids:
        return {}
    n = ClipNoteRow
    stmt = (
        select(
            n.incident_id,
            func.count(ClipLink.digest),
            func.max(Clip.short_reason),
            func.max(case((n.state == _PENDING, n.since))),
            func.max(case((n.state == _UNAVAILABLE, n.reason))),
            func.count(n.state),
        )
        .outerjoin(ClipLink, ClipLink.ref_id == n.ref_id)
        .outerjoin(Clip, Clip.digest == ClipLink.digest)
        .where(n.incident_id.in_(ids))
        .group_by(n.incident_id)
    )
    out: dict[int, ClipSummary] = {}
    for incident_id, linked, short, pending, unavailable, expected in await session.execute(stmt):
        out[incident_id] = summarize(linked, short, pending, unavailable, expected, now, timeout_s)
    return out


async def annotate(
    session: AsyncSession, incidents: Iterable[Incident], now: datetime, timeout_s: float
) -> None:
    """Set `clip` on each incident (NO_CLIP where no clip was ever expected)."""
    rows = list(incidents)
    found = await summaries(session, (r.id for r in rows), now, timeout_s)
    for row in rows:
        row.clip = found.get(row.id, NO_CLIP)
