"""What the chaos harness checks once the system drained after a fault: `Verdict`, and the store's facts.

Read with plain SQL, apart from the store's own code: the `incident_alerts` idempotency table (one row per
stored alert id), each incident's `count` against its linked alerts (an alert folded in twice shows there:
the link table cannot hold an id twice), and the per-day rollup `incident_counts` against counting
`incidents` by UTC day of `first_seen`, unit, station and kind, at every level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg  # type: ignore[import-untyped]

from center_api.store.rollup import LEVELS

_COUNTS = """
SELECT i.count, (SELECT count(*) FROM incident_alerts l WHERE l.incident_id = i.id) FROM incidents i
"""
_RAW = """
SELECT date_trunc('day', first_seen AT TIME ZONE 'UTC'), coalesce({column}, ''), station_id, kind, count(*)
FROM incidents GROUP BY 1, 2, 3, 4
"""
_ROLLED = """
SELECT day AT TIME ZONE 'UTC', unit_id, station_id, kind, n FROM incident_counts WHERE level = $1 AND n <> 0
"""


@dataclass
class StoreFacts:
    stored: set[str]  # alert ids in incident_alerts
    duplicated: int  # alerts counted into incidents beyond their one link
    miscounted: int  # incidents whose count differs from their linked alerts
    rollup_diff: dict[str, int]  # level -> rollup keys whose count differs from the raw table


_FROZEN_WRITER = """
SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
WHERE a.datname = current_database() AND a.state = 'idle in transaction'
  AND a.state_change < now() - make_interval(secs => $1) AND l.locktype = 'transactionid' AND l.granted
"""


async def frozen_writers(url: str, idle_s: float) -> int:
    """Sessions idle for `idle_s` in a transaction that wrote or locked rows (it holds its transaction id)."""
    conn = await asyncpg.connect(url, timeout=30)
    try:
        return int(await conn.fetchval(_FROZEN_WRITER, idle_s))
    finally:
        await conn.close()


async def stored_ids(url: str) -> set[str]:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        return {r[0] for r in await conn.fetch("SELECT alert_id FROM incident_alerts")}
    finally:
        await conn.close()


async def store_facts(url: str) -> StoreFacts:
    """Read the facts from the database at `url` (libpq's form: `postgresql://...`)."""
    conn = await asyncpg.connect(url, timeout=30)
    try:
        stored = {r[0] for r in await conn.fetch("SELECT alert_id FROM incident_alerts")}
        counts = await conn.fetch(_COUNTS)
        diff = {}
        for level in LEVELS:
            want = {tuple(r[:4]): r[4] for r in await conn.fetch(_RAW.format(column=f"{level}_id"))}
            got = {tuple(r[:4]): r[4] for r in await conn.fetch(_ROLLED, level)}
            diff[level] = sum(1 for key in want.keys() | got.keys() if want.get(key) != got.get(key))
        return StoreFacts(
            stored=stored,
            duplicated=sum(max(0, c - n) for c, n in counts),
            miscounted=sum(1 for c, n in counts if c != n),
            rollup_diff=diff,
        )
    finally:
        await conn.close()


@dataclass
class Verdict:
    """The whole run so far against what was handed over; `problems()` is empty when everything holds."""

    handed: int = 0
    stored: int = 0  # of the ids handed over, how many the store holds
    lost: list[str] = field(default_factory=list)
    duplicated: int = 0
    miscounted: int = 0
    unknown: int = 0  # stored alerts never handed over
    publisher_kills: int = (
        0  # each may leave one: a publish() the kill interrupted, journaled but not recorded
    )
    rollup_diff: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    unread: int = 0
    dead_extra: list[str] = field(default_factory=list)  # dead letters that were not injected
    dead_missing: list[str] = field(default_factory=list)  # injected entries not dead-lettered
    api: dict[str, int] = field(default_factory=dict)  # replica -> status of GET /api/v1/incidents
    crashed: list[str] = field(default_factory=list)  # background tasks the replicas' logs say died

    def problems(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} of {self.handed} handed over not stored, e.g. {self.lost[:3]}")
        if self.duplicated or self.miscounted:
            found.append(f"{self.duplicated} alerts counted twice, {self.miscounted} incidents miscounted")
        if self.unknown > self.publisher_kills:
            found.append(f"{self.unknown} stored alerts never handed over ({self.publisher_kills} kills)")
        if any(self.rollup_diff.values()):
            found.append(f"rollup keys that differ from the raw table: {self.rollup_diff}")
        if self.pending or self.unread:
            found.append(f"consumer group: {self.pending} pending, {self.unread} unread")
        if self.dead_extra or self.dead_missing:
            found.append(f"dead letters: unexpected {self.dead_extra}, missing {self.dead_missing}")
        if any(status != 200 for status in self.api.values()):
            found.append(f"incident list: {self.api}")
        if self.crashed:
            found.append(f"background tasks died: {self.crashed}")
        return found
