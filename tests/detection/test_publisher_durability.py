"""The write-ahead journal's log on disk, and the real publisher against a private Redis: refused and killed.

The kill tests run the publisher in a child process that records each alert id once its `publish()` returned
(one `write` per id: the kernel keeps it whatever becomes of the child), kill -9 it with Redis up, with Redis
down, and in the middle of the replay after an outage, start a new publisher on the same journal directory,
and check that every recorded id is in the stream exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from contracts.alerts import Alert
from contracts.bus import ALERTS_STREAM, decode_alert_entry
from detection.journal import AlertJournal, JournalInUse
from detection.publisher import RedisAlertPublisher
from tests.support.handover import HandoverLog, handed_over
from tests.support.servers import RedisServer

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = b"\xff\xd8" + bytes(range(256)) * 24  # a 6 KB stand-in for a JPEG


# --- the log on disk ---------------------------------------------------------------------------------------
def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_a_torn_tail_is_cut_and_the_entries_before_it_stay(tmp_path: Path) -> None:
    with AlertJournal(tmp_path) as j:
        for n in range(3):
            j.append(f"a{n}".encode(), SNAPSHOT if n == 1 else None)
    (seg,) = segment_files(tmp_path)
    whole = seg.stat().st_size
    with seg.open("r+b") as fh:
        fh.truncate(whole - 1)  # the last record lost its last byte, as a power cut leaves it
    with AlertJournal(tmp_path) as j:
        assert [e.alert_json for e in j.peek(10)] == [b"a0", b"a1"]
        assert j.peek(10)[1].snapshot == SNAPSHOT
        assert seg.stat().st_size == whole - 20 - 2  # cut back to the end of a1
        j.append(b"a3")
    with AlertJournal(tmp_path) as j:
        assert [e.alert_json for e in j.peek(10)] == [b"a0", b"a1", b"a3"]


@pytest.mark.parametrize("damage", ["payload", "length", "zeros"])
def test_a_damaged_record_ends_the_log_there(tmp_path: Path, damage: str) -> None:
    with AlertJournal(tmp_path) as j:
        seqs = [j.append(f"alert-{n}".encode()) for n in range(4)]
    (seg,) = segment_files(tmp_path)
    data = bytearray(seg.read_bytes())
    third = 8 + 2 * (20 + 7)  # magic, two records of header + "alert-n"
    if damage == "payload":
        data[third + 20] ^= 0xFF
    elif damage == "length":
        data[third + 12 : third + 16] = (2**31).to_bytes(4, "little")
    else:
        data[third:] = bytes(len(data) - third)  # pages that never reached the disk
    seg.write_bytes(bytes(data))
    with AlertJournal(tmp_path) as j:
        assert [e.seq for e in j.peek(10)] == seqs[:2]
        assert j.append(b"next") > seqs[1]
    assert seg.stat().st_size == third + 20 + 4


def test_group_commit_by_count_and_by_time(tmp_path: Path) -> None:
    with AlertJournal(tmp_path / "count", commit_interval_s=30.0, commit_every=8) as j:
        for n in range(8):
            j.append(f"{n}".encode())
        deadline = time.monotonic() + 10
        while j.synced_through < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert j.synced_through == 8 and j.commits >= 1  # the eighth append filled the window
    with AlertJournal(tmp_path / "time", commit_interval_s=0.05, commit_every=10_000) as j:
        j.append(b"one")
        deadline = time.monotonic() + 10
        while j.synced_through < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert j.synced_through == 1
        j.append(b"two")
        assert j.sync() and j.synced_through == 2


def test_reading_and_committing_leave_no_descriptor_open(tmp_path: Path) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    with AlertJournal(tmp_path, segment_bytes=4096) as j:
        for n in range(30):
            j.append(f"alert-{n}".encode(), SNAPSHOT[:500])
        assert j.sync()
        before = open_fds() - len(segment_files(tmp_path))  # each segment holds one descriptor
        for _ in range(20):
            assert len(j.peek(30)) == 30  # entries spread over several segments
            j.append(b"one more")
            assert j.sync()
        assert open_fds() - len(segment_files(tmp_path)) == before


def test_one_journal_per_directory(tmp_path: Path) -> None:
    with AlertJournal(tmp_path) as j:
        j.append(b"mine")
        with pytest.raises(JournalInUse):
            AlertJournal(tmp_path)
    with AlertJournal(tmp_path) as again:
        assert len(again) == 1


def test_acknowledged_segments_are_deleted(tmp_path: Path) -> None:
    with AlertJournal(tmp_path, segment_bytes=4096) as j:
        for n in range(40):
            j.append(f"alert-{n}".encode(), SNAPSHOT[:1000])
        assert len(segment_files(tmp_path)) >= 9
        j.ack(j.last_seq - 1)
        assert len(segment_files(tmp_path)) == 1 and len(j) == 1
    with AlertJournal(tmp_path) as j:
        assert [e.alert_json for e in j.peek(10)] == [b"alert-39"]


def test_dropped_snapshots_give_their_disk_space_back(tmp_path: Path) -> None:
    with AlertJournal(tmp_path, max_bytes=200_000, segment_bytes=32_768) as j:
        for n in range(100):
            j.append(f"alert-{n}".encode(), SNAPSHOT)
        assert j.dropped_alerts == 0 and j.dropped_snapshots > 60 and len(j) == 100
        assert j.size_bytes <= 200_000
        on_disk = sum(p.stat().st_size for p in segment_files(tmp_path))
        assert on_disk <= 200_000 + 32_768 + 100 * 20 + 8 * len(segment_files(tmp_path))
        kept = [e.snapshot is not None for e in j.peek(100)]
        assert kept == sorted(kept)  # the oldest lost theirs; the newest kept theirs
    with AlertJournal(tmp_path, max_bytes=200_000, segment_bytes=32_768) as j:
        assert [e.snapshot is not None for e in j.peek(100)] == kept


def test_the_file_per_alert_journal_is_moved_into_the_log(tmp_path: Path) -> None:
    (tmp_path / f"{7:016d}.json").write_bytes(b"seven")
    (tmp_path / f"{7:016d}.jpg").write_bytes(b"jpeg-7")
    (tmp_path / f"{9:016d}.json").write_bytes(b"nine")
    (tmp_path / f"{11:016d}.jpg").write_bytes(b"orphan")
    with AlertJournal(tmp_path) as j:
        assert [(e.alert_json, e.snapshot) for e in j.peek(10)] == [(b"seven", b"jpeg-7"), (b"nine", None)]
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob("*.jpg"))


# --- the publisher against a private Redis -----------------------------------------------------------------
@pytest.mark.integration
def test_alerts_redis_refuses_stay_journaled_until_it_takes_them(tmp_path: Path) -> None:
    with RedisServer(databases=1) as server:
        admin = redis.Redis.from_url(server.url, socket_timeout=5)
        admin.config_set("maxmemory", "1")  # every write is refused: OOM
        pub = RedisAlertPublisher(server.url, tmp_path / "journal", socket_timeout_s=1.0, backoff_max_s=0.2)
        try:
            now = datetime.now(UTC)
            alerts = [
                Alert(kind="tamper", severity=1, camera_id="cam-oom", captured_at=now) for _ in range(2)
            ]
            for a in alerts:
                pub.publish(a, SNAPSHOT)
            deadline = time.monotonic() + 30
            while pub.counts.failed < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert pub.counts.failed >= 2 and len(pub.journal) == 2 and admin.xlen(ALERTS_STREAM) == 0
            admin.config_set("maxmemory", "0")
            assert pub.wait_drained(30)
        finally:
            pub.close()
        stream = [decode_alert_entry(fields) for _, fields in admin.xrange(ALERTS_STREAM)]
        admin.close()
    assert [(a.id, snap) for a, snap in stream] == [(a.id, SNAPSHOT) for a in alerts]


# --- the publisher killed with SIGKILL ---------------------------------------------------------------------
def child_main(argv: list[str]) -> int:
    """`publish URL DIR IDS RATE`: publish forever at RATE/s, appending each id to IDS once publish returned.
    `drain URL DIR`: send what the journal holds, print the counts, exit 0 when everything went out."""
    mode, url, journal = argv[0], argv[1], Path(argv[2])
    pub = RedisAlertPublisher(url, journal, socket_timeout_s=0.5, backoff_max_s=0.2)
    if mode == "drain":
        drained = pub.wait_drained(60)
        pub.close()
        print(json.dumps(pub.counts.__dict__), flush=True)
        return 0 if drained else 1
    ids = HandoverLog(Path(argv[3]))
    interval, due, n = 1.0 / float(argv[4]), time.monotonic(), 0
    while True:
        alert = Alert(
            kind="intrusion", severity=2, camera_id="cam-k9", captured_at=datetime.now(UTC), detail=f"#{n}"
        )
        pub.publish(alert, SNAPSHOT)
        ids.record(alert.id)
        n += 1
        due += interval
        time.sleep(max(0.0, due - time.monotonic()))


def spawn(mode: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
    code = "import sys; from tests.detection.test_publisher_durability import child_main; "
    code += "sys.exit(child_main(sys.argv[1:]))"
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, mode, *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )


class KillRun:
    """One publisher child on one journal directory, against one private Redis that keeps its data (AOF)."""

    def __init__(self, server: RedisServer, workdir: Path) -> None:
        self.server, self.workdir = server, workdir
        self.journal, self.ids, self.log = workdir / "journal", workdir / "ids", workdir / "child.log"
        self.child: subprocess.Popen[bytes] | None = None

    def start(self, rate: int = 800) -> None:
        self.child = spawn(
            "publish", self.server.url, str(self.journal), str(self.ids), str(rate), log=self.log
        )

    def start_then_stop_redis(self, sent: int, backlog: int) -> None:
        """Start the child; once `sent` alerts are in the stream stop Redis, and return once `backlog` more
        alerts have been published (journaled) while it is down."""
        self.start()
        self.wait(lambda: self.xlen() >= sent, "alerts sent")
        self.server.stop()
        before = len(self.recorded())
        self.wait(lambda: len(self.recorded()) >= before + backlog, "alerts published while Redis is down")

    def recorded(self) -> list[str]:
        return handed_over(self.ids)

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.child is None or self.child.poll() is None, f"child died:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.log.read_text()}"
            time.sleep(0.005)

    def kill9(self) -> int:
        """SIGKILL the child; how many entries its journal held (read once the lock is free)."""
        assert self.child is not None and self.child.poll() is None, self.log.read_text()
        self.child.send_signal(signal.SIGKILL)
        self.child.wait(timeout=30)
        self.child = None
        with AlertJournal(self.journal) as left:
            return len(left)

    def drain(self) -> dict[str, int]:
        proc = spawn("drain", self.server.url, str(self.journal), log=self.log)
        assert proc.wait(timeout=120) == 0, self.log.read_text()
        return json.loads(self.log.read_text().strip().splitlines()[-1])

    def xlen(self) -> int:
        client = redis.Redis.from_url(self.server.url, socket_timeout=5)
        try:
            return int(client.xlen(ALERTS_STREAM))
        finally:
            client.close()

    def assert_every_recorded_id_once(self) -> None:
        client = redis.Redis.from_url(self.server.url, socket_timeout=10)
        try:
            stream = [decode_alert_entry(fields)[0].id for _, fields in client.xrange(ALERTS_STREAM)]
        finally:
            client.close()
        recorded = self.recorded()
        assert len(stream) == len(set(stream)), "an alert is in the stream twice"
        missing = set(recorded) - set(stream)
        assert not missing, f"{len(missing)} of {len(recorded)} published alerts lost"


@pytest.fixture
def kill_run(tmp_path: Path) -> Iterator[KillRun]:
    server = RedisServer(databases=1, extra_args=["--appendonly", "yes"])  # the data outlives a restart
    server.start()
    run = KillRun(server, tmp_path)
    try:
        yield run
    finally:
        if run.child is not None:
            run.child.kill()
            run.child.wait(timeout=30)
        server.close()


@pytest.mark.integration
def test_kill9_with_redis_up_loses_nothing(kill_run: KillRun) -> None:
    kill_run.start(rate=2000)
    kill_run.wait(lambda: len(kill_run.recorded()) >= 1500, "alerts published")
    kill_run.kill9()
    kill_run.drain()
    assert len(kill_run.recorded()) >= 1500
    kill_run.assert_every_recorded_id_once()


@pytest.mark.integration
def test_kill9_with_redis_down_loses_nothing(kill_run: KillRun) -> None:
    kill_run.start_then_stop_redis(sent=300, backlog=500)
    held = kill_run.kill9()
    assert held >= 500  # what the kill left for the next publisher
    kill_run.server.start()
    counts = kill_run.drain()
    assert counts["recovered"] == held and counts["replayed"] == held
    kill_run.assert_every_recorded_id_once()


@pytest.mark.integration
def test_kill9_in_the_middle_of_a_replay_loses_nothing(kill_run: KillRun) -> None:
    kill_run.start_then_stop_redis(sent=200, backlog=2000)
    kill_run.server.start()  # the child reconnects and replays its backlog while it goes on publishing
    at_restart = kill_run.xlen()
    kill_run.wait(lambda: kill_run.xlen() > at_restart, "the replay to go on", timeout=30)
    assert kill_run.server.proc is not None
    os.kill(kill_run.server.proc.pid, signal.SIGSTOP)  # hold the replay where it is: a batch may be in flight
    try:
        held = kill_run.kill9()
    finally:
        os.kill(kill_run.server.proc.pid, signal.SIGCONT)
    assert held > 0  # the kill landed inside the replay: part of the backlog was still unsent
    counts = kill_run.drain()
    assert counts["recovered"] == held
    kill_run.assert_every_recorded_id_once()
