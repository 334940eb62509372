"""The delivery journal, and the publisher against a real Redis that we stop and restart (our own server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from contracts.alerts import Alert
from contracts.bus import ALERTS_STREAM, decode_alert_entry
from detection.journal import AlertJournal
from detection.publisher import RedisAlertPublisher
from tests.support.rtsp import free_port
from tests.support.servers import RedisServer


def alert(n: int) -> Alert:
    return Alert(
        kind="intrusion", severity=2, camera_id="cam-j", captured_at=datetime.now(UTC), detail=f"#{n}"
    )


def test_journal_keeps_order_and_survives_reopen(tmp_path: Path) -> None:
    j = AlertJournal(tmp_path)
    for n in range(5):
        j.append(f"a{n}".encode(), b"jpeg" if n % 2 else None)
    j.ack(j.peek(1)[0].seq)
    j.close()
    with AlertJournal(tmp_path) as again:
        entries = again.peek(10)
        assert [e.alert_json for e in entries] == [b"a1", b"a2", b"a3", b"a4"]
        assert [e.snapshot for e in entries] == [b"jpeg", None, b"jpeg", None]
        assert again.append(b"a5") > entries[-1].seq


def test_full_journal_drops_oldest_snapshots_first_then_alerts(tmp_path: Path) -> None:
    j = AlertJournal(tmp_path, max_bytes=3 * 100 + 2 * 10)  # room for 2 snapshots beside small alerts
    for n in range(3):
        j.append(f"alert-{n}".encode().ljust(10), b"x" * 100)
    assert j.dropped_snapshots == 1 and j.dropped_alerts == 0
    assert [e.snapshot is None for e in j.peek(10)] == [True, False, False]
    small = AlertJournal(tmp_path / "small", max_bytes=25)
    for n in range(4):
        small.append(f"alert-{n}".encode().ljust(10), b"y" * 5)
    assert small.dropped_alerts >= 2 and small.dropped_snapshots >= 1
    assert [e.alert_json.strip() for e in small.peek(10)][-1] == b"alert-3"
    capped = AlertJournal(tmp_path / "capped", max_entries=2)
    for n in range(5):
        capped.append(str(n).encode())
    assert [e.alert_json for e in capped.peek(10)] == [b"3", b"4"] and capped.dropped_alerts == 3


# A private server (tests.support.servers) the tests stop and restart on its port, not the suite's one.
OwnRedis = RedisServer


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def stream_ids(url: str) -> list[str]:
    client = redis.Redis.from_url(url)
    try:
        return [decode_alert_entry(fields)[0].id for _, fields in client.xrange(ALERTS_STREAM)]
    finally:
        client.close()


@pytest.mark.integration
def test_outage_every_alert_arrives_exactly_once_in_order(own_redis: OwnRedis, tmp_path: Path) -> None:
    pub = RedisAlertPublisher(own_redis.url, tmp_path / "journal", socket_timeout_s=1.0, backoff_max_s=0.5)
    sent: list[str] = []
    try:
        for n in range(10):
            a = alert(n)
            sent.append(a.id)
            pub.publish(a, b"\xff\xd8snapshot")
        wait_for(lambda: pub.drained, what="first alerts sent")
        own_redis.stop()  # Redis goes away mid-run
        for n in range(10, 40):
            a = alert(n)
            sent.append(a.id)
            pub.publish(a, b"\xff\xd8snapshot")
        wait_for(
            lambda: pub.counts.journaled == 30 and len(pub.journal) == 30,
            what="alerts journaled while Redis is down",
        )
        assert not pub.connected
        own_redis.start()  # a fresh, empty Redis on the same port
        for n in range(40, 45):
            a = alert(n)
            sent.append(a.id)
            pub.publish(a)
        wait_for(lambda: pub.drained, timeout=120, what="journal replayed")
    finally:
        pub.close()
    got = stream_ids(own_redis.url)
    assert (
        got == sent[10:]
    )  # the restarted server lost the first ten; everything after arrives once, in order
    assert pub.counts.replayed == 30 and pub.counts.journaled == 30


@pytest.mark.integration
def test_replay_is_idempotent_on_id(own_redis: OwnRedis, tmp_path: Path) -> None:
    a = alert(1)
    pub = RedisAlertPublisher(own_redis.url, tmp_path / "journal")
    try:
        pub.publish(a)
        wait_for(lambda: pub.drained)
        pub.journal.append(a.model_dump_json().encode())  # as if the XADD's reply had been lost
        pub.publish(alert(2))
        wait_for(lambda: pub.drained)
    finally:
        pub.close()
    ids = stream_ids(own_redis.url)
    assert ids.count(a.id) == 1 and len(ids) == 2 and pub.counts.duplicates == 1


@pytest.mark.integration
def test_alerts_journaled_at_close_are_sent_by_the_next_publisher(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    own_redis.stop()
    pub = RedisAlertPublisher(own_redis.url, tmp_path / "journal", socket_timeout_s=0.5)
    alerts = [alert(n) for n in range(3)]
    for a in alerts:
        pub.publish(a)
    pub.close(timeout=1.0)
    with AlertJournal(tmp_path / "journal") as left:
        assert len(left) == 3
    own_redis.start()
    pub2 = RedisAlertPublisher(own_redis.url, tmp_path / "journal")
    try:
        wait_for(lambda: pub2.drained, what="replay after restart")
    finally:
        pub2.close()
    assert stream_ids(own_redis.url) == [a.id for a in alerts]


@pytest.mark.integration
def test_unreachable_redis_from_the_start_journals_everything(tmp_path: Path) -> None:
    pub = RedisAlertPublisher(
        f"redis://127.0.0.1:{free_port()}/0", tmp_path / "journal", socket_timeout_s=2.0
    )
    try:
        for n in range(50):
            pub.publish(alert(n))  # only writes ahead: the sender thread meets the dead socket
        wait_for(lambda: pub.counts.journaled == 50 and len(pub.journal) == 50, what="alerts journaled")
        assert not pub.connected
    finally:
        pub.close(timeout=0.5)
    with AlertJournal(tmp_path / "journal") as left:
        assert [e.alert_json for e in left.peek(1)]
