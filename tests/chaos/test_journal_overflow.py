"""Chaos: a worker cut off from Redis for longer than its journal holds (issue #11, section 2).

The worker's real publisher (`RedisAlertPublisher`, as `gridwatch worker` builds it, with small journal
bounds) sends to a private Redis with an append-only file. A few alerts go through, Redis is stopped, many
more alerts are published than the journal holds, Redis starts again on its port, and the journal drains.

The drop order is the documented one (README "Delivery", `detection.journal`): over `max_entries` the oldest
alerts go; over `max_bytes` the oldest snapshots go first (the alert stays, without its picture) until the
journal is `max_bytes / 16` under the bound, then the oldest alerts. `expected_drops` replays that rule over
the sizes published, apart from the journal's code, and names the alerts dropped and the snapshots taken off.
The case checks which ids are missing, which arrived without their picture, that the journal's counters and
the `gridwatch_alert_delivery` metric equal those numbers, that the rest arrived once and in order, and that
the journal's files stayed within what it holds plus one segment while it dropped.

An alert the bound takes while the sender has it in flight counts as dropped only if Redis does not take it:
a table of the ways a batch ends, on the journal alone, and a case where a paused Redis holds the replayed
batch while new alerts push the journal past its bound.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from contracts.alerts import Alert, AlertKind
from contracts.bus import ALERTS_STREAM, decode_alert_entry
from detection.config import DetectionConfig
from detection.journal import AlertJournal
from detection.metrics import DetectionCollector
from detection.pipeline import DetectionPipeline
from detection.publisher import RedisAlertPublisher
from tests.support.fixtures import entered_or_fail
from tests.support.servers import RedisServer

RECORD_OVERHEAD = 20  # bytes a journal record adds to its alert and snapshot (detection.segments)
BEFORE = 5  # alerts sent while Redis is up, before the outage


@dataclass(frozen=True)
class Bounds:
    max_entries: int
    max_bytes: int
    during: int  # alerts published while Redis is down
    snapshot: tuple[int, int]  # snapshot sizes drawn from this range; 0 is an alert without a snapshot


CASES = [
    pytest.param(Bounds(40, 2**20, 1200, (0, 0)), id="entry-bound"),
    pytest.param(Bounds(100_000, 64 * 2**10, 400, (500, 4000)), id="byte-bound"),
    pytest.param(Bounds(150, 96 * 2**10, 600, (0, 3000)), id="both-bounds"),
]


@dataclass(frozen=True)
class Drops:
    alerts: list[str]  # ids dropped, oldest first
    snapshots: set[str]  # ids whose snapshot was taken off (also those dropped later)


@dataclass
class _Held:
    id: str
    alert_len: int
    snap_len: int


def expected_drops(published: list[_Held], bounds: Bounds) -> Drops:
    """The documented rule over the entries appended in order while nothing is sent."""
    slack = bounds.max_bytes // 16
    held: deque[_Held] = deque()
    total = 0
    dropped: list[str] = []
    stripped: set[str] = set()

    def drop_oldest() -> None:
        nonlocal total
        entry = held.popleft()
        total -= entry.alert_len + entry.snap_len
        dropped.append(entry.id)

    for entry in published:
        held.append(entry)
        total += entry.alert_len + entry.snap_len
        while len(held) > bounds.max_entries:
            drop_oldest()
        if total > bounds.max_bytes:
            for old in held:  # the oldest snapshots first, down to `slack` under the bound
                if total <= bounds.max_bytes - slack:
                    break
                if old.snap_len:
                    total -= old.snap_len
                    old.snap_len = 0
                    stripped.add(old.id)
            while total > bounds.max_bytes and held:  # then the oldest alerts
                drop_oldest()
    return Drops(dropped, stripped)


def make_alerts(count: int, bounds: Bounds, rng: random.Random) -> list[tuple[Alert, bytes | None]]:
    """Alerts of varied sizes (detail length), each with a snapshot of a seeded size or none."""
    made = []
    for n in range(count):
        detail = f"#{n} " + "x" * rng.randrange(0, 200)
        alert = Alert(
            kind=AlertKind.intrusion,
            severity=2,
            camera_id="cam-j",
            captured_at=datetime.now(UTC),
            detail=detail,
        )
        size = rng.randint(*bounds.snapshot)
        made.append((alert, b"\xff\xd8" + rng.randbytes(size - 2) if size else None))
    return made


def delivery_metric(pub: RedisAlertPublisher, worker: str) -> dict[str, float]:
    """`gridwatch_alert_delivery_total` by outcome, as the worker's metrics endpoint serves it."""
    registry = CollectorRegistry()
    pipeline = DetectionPipeline(DetectionConfig(model=Path("unused.onnx"), worker_id=worker), pub)
    registry.register(DetectionCollector(pipeline, pub))
    text = generate_latest(registry).decode()
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gridwatch_alert_delivery_total" and sample.labels["worker"] == worker
    }


def read_stream(url: str) -> list[tuple[Alert, bytes | None]]:
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        return [decode_alert_entry(fields) for _, fields in client.xrange(ALERTS_STREAM)]
    finally:
        client.close()


def journal_disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.seg"))


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("bounds", CASES)
def test_an_outage_longer_than_the_journal_drops_the_documented_alerts_and_counts_them(
    tmp_path: Path, bounds: Bounds
) -> None:
    rng = random.Random(11)
    before = make_alerts(BEFORE, bounds, rng)
    during = make_alerts(bounds.during, bounds, rng)
    expected = expected_drops(
        [_Held(a.id, len(a.model_dump_json().encode()), len(s or b"")) for a, s in during], bounds
    )
    assert expected.alerts, "the case must overflow the journal's alerts"
    if bounds.snapshot[1]:
        assert expected.snapshots, "the case must overflow the journal's bytes"
    journal_dir = tmp_path / "journal"
    with entered_or_fail(RedisServer(extra_args=["--appendonly", "yes"]), "a private Redis") as server:
        pub = RedisAlertPublisher(
            server.url,
            journal_dir,
            journal_max_entries=bounds.max_entries,
            journal_max_bytes=bounds.max_bytes,
            socket_timeout_s=1.0,
            backoff_max_s=0.5,
        )
        try:
            for alert, snapshot in before:
                pub.publish(alert, snapshot)
            assert pub.wait_drained(30), "the alerts before the outage were not sent"
            server.stop()  # the worker is cut off: nothing published from here on can reach Redis
            largest = 0
            for alert, snapshot in during:
                pub.publish(alert, snapshot)
                largest = max(largest, len(alert.model_dump_json()) + len(snapshot or b"") + RECORD_OVERHEAD)
            journal = pub.journal
            held = journal.size_bytes + RECORD_OVERHEAD * len(journal)
            assert journal_disk_bytes(journal_dir) <= held + journal.segment_bytes + largest, (
                "the journal's files grew past what it holds while it dropped"
            )
            assert len(journal) == bounds.during - len(expected.alerts)
            server.start()  # same port, the append-only file brings back what was sent before
            assert pub.wait_drained(45), f"{len(pub.journal)} alerts still journaled after Redis came back"
            metric = delivery_metric(pub, "w-overflow")
        finally:
            pub.close()
        stored = read_stream(server.url)
    dropped = set(expected.alerts)
    kept = [(a, s) for a, s in during if a.id not in dropped]
    assert [a.id for a, _ in stored] == [a.id for a, _ in before + kept]  # once each, in order
    assert [a for a, _ in stored] == [a for a, _ in before + kept]
    arrived_bare = {a.id for a, s in stored[BEFORE:] if s is None}
    had_picture = {a.id for a, s in during if s is not None}
    assert arrived_bare & had_picture == expected.snapshots - dropped
    for (alert, sent), (_, got) in zip(before + kept, stored, strict=True):
        assert got == (None if alert.id in expected.snapshots else sent), alert.id
    assert pub.journal.dropped_alerts == len(expected.alerts)
    assert pub.journal.dropped_snapshots == len(expected.snapshots)
    assert metric["dropped_alert"] == len(expected.alerts)
    assert metric["dropped_snapshot"] == len(expected.snapshots)
    counts = pub.counts
    assert counts.published == BEFORE + bounds.during
    assert counts.sent == counts.published - len(expected.alerts) and counts.duplicates == 0


# How the sender ends the batch it has in flight after the bound took entries of it, and how many count as
# dropped. "entries": batch [1, 2, 3] of a journal of 3, two more appends drop alerts 1 and 2. "bytes": batch
# [1, 2] of 10-byte alerts with 100-byte snapshots under a 320-byte bound, a third append takes snapshot 1.
IN_FLIGHT = [
    pytest.param("entries", "ack 3", 0, id="alerts-redis-took-all"),
    pytest.param("entries", "ack 1", 1, id="alerts-redis-took-the-first"),
    pytest.param("entries", "release", 2, id="alerts-redis-did-not-answer"),
    pytest.param("entries", "peek", 2, id="alerts-peeked-again-without-ack"),
    pytest.param("bytes", "ack 2", 0, id="snapshot-redis-took-all"),
    pytest.param("bytes", "ack 1", 0, id="snapshot-redis-took-its-alert"),
    pytest.param("bytes", "release", 1, id="snapshot-redis-did-not-answer"),
]


@pytest.mark.parametrize(("bound", "outcome", "dropped"), IN_FLIGHT)
def test_what_the_bound_takes_in_flight_counts_only_if_redis_did_not_take_it(
    tmp_path: Path, bound: str, outcome: str, dropped: int
) -> None:
    with AlertJournal(tmp_path, max_entries=3 if bound == "entries" else 100, max_bytes=320) as journal:
        snapshot = None if bound == "entries" else b"s" * 100
        first = 3 if bound == "entries" else 2
        for n in range(first):
            journal.append(f"alert-{n + 1:04d}".encode(), snapshot)
        assert [e.seq for e in journal.peek(10)] == list(range(1, first + 1))  # the sender's batch
        for n in range(first, first + (2 if bound == "entries" else 1)):
            journal.append(f"alert-{n + 1:04d}".encode(), snapshot)
        assert (journal.dropped_alerts, journal.dropped_snapshots) == (0, 0)  # in flight: not known yet
        if outcome == "release":
            journal.release()
        elif outcome == "peek":
            journal.peek(10)
        else:
            journal.ack(int(outcome.split()[1]))
        counted = journal.dropped_alerts if bound == "entries" else journal.dropped_snapshots
        assert counted == dropped
        assert (journal.dropped_snapshots if bound == "entries" else journal.dropped_alerts) == 0


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_alerts_the_bound_takes_while_a_slow_redis_holds_the_replay_are_counted_only_if_lost(
    tmp_path: Path,
) -> None:
    """A worker stopped with its journal full after a long outage starts again while Redis is back but holds
    writes (CLIENT PAUSE WRITE), so its first batch waits in Redis while new alerts push the journal past its
    bound: every alert arrives once, in order, or is counted dropped."""
    bounds = Bounds(40, 2**20, 200, (0, 0))
    rng = random.Random(12)
    published: list[str] = []
    journal_dir = tmp_path / "journal"

    def publish(pub: RedisAlertPublisher, count: int, pause_s: float = 0.0) -> None:
        for alert, snapshot in make_alerts(count, bounds, rng):
            pub.publish(alert, snapshot)
            published.append(alert.id)
            time.sleep(pause_s)

    with entered_or_fail(RedisServer(), "a private Redis") as server:
        server.stop()
        first = RedisAlertPublisher(
            server.url, journal_dir, journal_max_entries=bounds.max_entries, socket_timeout_s=0.5
        )
        try:
            publish(first, bounds.during)  # the outage: the journal is full
        finally:
            first.close(timeout=0.5)
        server.start()
        admin = redis.Redis.from_url(server.url, socket_timeout=5)
        try:
            admin.execute_command("CLIENT", "PAUSE", "2000", "WRITE")  # PING answers, XADD waits
        finally:
            admin.close()
        pub = RedisAlertPublisher(
            server.url,
            journal_dir,
            journal_max_entries=bounds.max_entries,
            socket_timeout_s=5.0,  # longer than the pause: the held batch is answered, not timed out
        )
        try:
            publish(pub, 200, 0.001)  # past the bound while the replayed batch waits in Redis
            assert pub.wait_drained(45), f"{len(pub.journal)} alerts still journaled"
            metric = delivery_metric(pub, "w-overflow")
        finally:
            pub.close()
        stored = [a.id for a, _ in read_stream(server.url)]
    assert len(set(stored)) == len(stored)
    missing = set(published) - set(stored)
    assert stored == [i for i in published if i not in missing]  # in order
    assert first.journal.dropped_alerts + pub.journal.dropped_alerts == len(missing)
    assert metric["dropped_alert"] == pub.journal.dropped_alerts
    assert pub.counts.sent == len(stored)
