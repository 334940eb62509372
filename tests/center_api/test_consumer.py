"""The gw:alerts consumer against real Redis and a real database: dead letters, claims, idempotency."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from center_api.store.db import refused_for_its_data
from contracts import Alert, encode_alert_entry
from tests.center_api.conftest import NANGUAN_1, SCRAPE, auth, make_alert, poll, xadd

pytestmark = pytest.mark.integration
CITY = auth("city_command", None, "chief")


async def _items(center) -> list:
    r = await center.client.get("/api/v1/incidents", params={"limit": 500}, headers=CITY)
    return r.json()["items"]


async def _no_pending(redis_db) -> bool:
    return redis_db.xpending("gw:alerts", "center")["pending"] == 0


def _read_and_never_acknowledged(redis_db, consumer: str, n: int) -> list[Alert]:
    """`n` alerts that `consumer` read from the group (created here) and never acknowledged: all pending."""
    redis_db.xgroup_create("gw:alerts", "center", id="0", mkstream=True)
    alerts = [make_alert(NANGUAN_1, camera_id=f"cam-{i}") for i in range(n)]
    for alert in alerts:
        redis_db.xadd("gw:alerts", encode_alert_entry(alert))
    taken = redis_db.xreadgroup("center", consumer, {"gw:alerts": ">"}, count=100)
    assert len(taken[0][1]) == n
    assert redis_db.xpending("gw:alerts", "center")["pending"] == n
    return alerts


async def test_bad_entries_go_to_dead_letter_and_consumer_continues(center_factory, database_url, redis_db):
    center = await center_factory(database_url)
    redis_db.xadd("gw:alerts", {"alert": b"{not json"})
    redis_db.xadd("gw:alerts", {"nothing": b"here"})
    redis_db.xadd("gw:alerts", {"alert": b'{"kind": "intrusion", "severity": 9}'})
    good = make_alert(NANGUAN_1)
    xadd(redis_db, good)

    async def stored():
        return [i for i in await _items(center) if i["alert_id"] == good.id]

    await poll(stored)
    await poll(lambda: _no_pending(redis_db))
    dead = redis_db.xrange("gw:alerts:dead")
    assert len(dead) == 3
    reasons = [fields[b"reason"].decode() for _, fields in dead]
    assert all(r.startswith("invalid alert") for r in reasons)
    assert dead[0][1][b"alert"] == b"{not json" and b"entry_id" in dead[0][1]


async def test_entries_of_a_killed_consumer_are_claimed_and_stored_once(
    center_factory, any_database_url, redis_db
):
    # A consumer of the group reads a batch and dies before acknowledging it.
    alerts = _read_and_never_acknowledged(redis_db, "dead-worker-1", 20)

    center = await center_factory(any_database_url, claim_idle_ms=300, claim_every_s=0.3)
    await poll(lambda: _no_pending(redis_db))

    async def all_stored():
        items = await _items(center)
        return items if len(items) == 20 else None

    items = await poll(all_stored)
    assert sorted(i["alert_id"] for i in items) == sorted(a.id for a in alerts)
    assert all(i["count"] == 1 for i in items)


async def test_committed_but_unacknowledged_entries_are_not_stored_twice(
    center_factory, database_url, redis_db
):
    # First center stores the alerts; then the same entries appear pending again (as if the XACK was lost).
    center = await center_factory(database_url, claim_idle_ms=300, claim_every_s=0.3)
    alerts = [make_alert(NANGUAN_1, camera_id=f"cam-{i}") for i in range(5)]
    for alert in alerts:
        xadd(redis_db, alert)

    async def five():
        items = await _items(center)
        return items if len(items) == 5 else None

    await poll(five)
    # Re-deliver: add the same alert ids again and leave them pending in a dead consumer.
    for alert in alerts:
        xadd(redis_db, alert)
    redis_db.xreadgroup("center", "dead-worker-2", {"gw:alerts": ">"}, count=100)
    await poll(lambda: _no_pending(redis_db))
    items = await _items(center)
    assert len(items) == 5 and all(i["count"] == 1 for i in items)


async def test_a_restarted_replica_takes_back_its_own_pending_entries_at_once(
    center_factory, database_url, redis_db
):
    # The replica read a batch under its stable name and was killed before acknowledging it. Restarted under
    # the same name, it stores them without waiting for the claim time (an hour here: no claim can help).
    alerts = _read_and_never_acknowledged(redis_db, "center-host-a", 10)

    center = await center_factory(database_url, consumer_name="center-host-a", claim_idle_ms=3_600_000)
    await poll(lambda: _no_pending(redis_db), within_s=30)
    assert sorted(i["alert_id"] for i in await _items(center)) == sorted(a.id for a in alerts)
    metrics = await center.client.get("/metrics", headers=SCRAPE)
    assert "gridwatch_center_alerts_claimed_total 0.0" in metrics.text  # none went through XAUTOCLAIM


async def test_dead_consumers_are_reaped_but_never_one_with_pending_entries(
    center_factory, database_url, redis_db
):
    _read_and_never_acknowledged(redis_db, "holder", 1)
    redis_db.xreadgroup("center", "ghost", {"gw:alerts": ">"}, count=1)  # nothing left: idle, empty
    # Claiming is off for the test (an hour), so "holder" keeps its entry and must survive every sweep.
    center = await center_factory(
        database_url, consumer_name="live", claim_idle_ms=3_600_000, claim_every_s=0.2, reap_idle_ms=1000
    )

    def names() -> set[str]:
        return {c["name"].decode() for c in redis_db.xinfo_consumers("gw:alerts", "center")}

    async def ghost_gone():
        return "ghost" not in names()

    await poll(ghost_gone, within_s=30)
    assert names() == {"holder", "live"}
    assert redis_db.xpending("gw:alerts", "center")["pending"] == 1
    metrics = await center.client.get("/metrics", headers=SCRAPE)
    assert "gridwatch_center_consumers_reaped_total 1.0" in metrics.text


class _DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "dead_letter"),
    [
        (DBAPIError("INSERT", {}, _DriverError("22001")), True),  # a value too long for its column
        (DBAPIError("INSERT", {}, _DriverError("23505")), True),  # a unique key (a replica's race, retried)
        (IntegrityError("INSERT", {}, _DriverError(None)), True),  # SQLite's: no SQLSTATE, the class says
        (DataError("INSERT", {}, _DriverError(None)), True),
        (DBAPIError("INSERT", {}, _DriverError("57P03")), False),  # the server is starting up (after a crash)
        (DBAPIError("INSERT", {}, _DriverError("57P01")), False),  # shut down by the administrator
        (DBAPIError("INSERT", {}, _DriverError("08006")), False),  # the connection broke
        (DBAPIError("INSERT", {}, _DriverError("40P01")), False),  # a deadlock
        (DBAPIError("INSERT", {}, _DriverError("53300")), False),  # too many connections
        (DBAPIError("INSERT", {}, _DriverError(None)), False),  # no SQLSTATE: not known to be the data's
        (OperationalError("INSERT", {}, _DriverError(None)), False),
    ],
)
def test_only_rows_the_database_refuses_for_their_data_are_dead_lettered(
    error: DBAPIError, dead_letter: bool
) -> None:
    """A database that is away (a kill -9 of the postmaster: refused connections, then "starting up")
    must never dead-letter a batch: it is retried. Only integrity and data errors are the rows' fault."""
    assert refused_for_its_data(error) is dead_letter


async def test_acknowledged_entries_are_trimmed_and_pending_or_unread_ones_stay(
    center_factory, database_url, redis_db
) -> None:
    """The stream keeps what is still to be stored: entries every group acknowledged go after
    `stream_keep_acked_s`; an entry pending in a (dead) consumer, every entry after it, and entries another
    group has not read yet stay."""
    _read_and_never_acknowledged(redis_db, "dead-replica", 1)  # the oldest entry, pending in a dead consumer
    held_id = redis_db.xrange("gw:alerts")[0][0]
    redis_db.xgroup_create("gw:alerts", "audit", id="$")  # another reader, from here on
    center = await center_factory(
        database_url, stream_keep_acked_s=0, claim_every_s=0.2, claim_idle_ms=3_600_000
    )
    later = [make_alert(NANGUAN_1, camera_id=f"cam-later-{i}") for i in range(20)]
    for alert in later:
        xadd(redis_db, alert)

    async def stored() -> bool:
        return sum(i["count"] for i in await _items(center)) == len(later)

    await poll(stored)
    await asyncio.sleep(1.0)  # a few trim rounds
    ids = [entry_id for entry_id, _ in redis_db.xrange("gw:alerts")]
    assert ids[0] == held_id and len(ids) == 1 + len(later), "the audit group has read nothing: all stay"

    redis_db.xreadgroup("audit", "auditor", {"gw:alerts": ">"}, count=100)
    audit_pending = redis_db.xpending("gw:alerts", "audit")["pending"]
    assert audit_pending == len(later)
    redis_db.xack("gw:alerts", "audit", *ids[1:])
    await asyncio.sleep(1.0)
    # The audit group is done, but the center's own group still holds the dead replica's entry: it stays,
    # and so does everything after it.
    assert [entry_id for entry_id, _ in redis_db.xrange("gw:alerts")] == ids

    redis_db.xack("gw:alerts", "center", held_id)  # as a claim would, once stored

    async def trimmed() -> bool:
        return redis_db.xlen("gw:alerts") <= 1  # everything acknowledged; XTRIM keeps the bound's own entry

    await poll(trimmed, within_s=30)
    metrics = await center.client.get("/metrics", headers=SCRAPE)
    assert "gridwatch_center_entries_trimmed_total" in metrics.text
