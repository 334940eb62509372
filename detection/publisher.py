"""The only module that writes alerts to Redis: XADD to `gw:alerts`, with an on-disk journal for outages.

`publish` never touches the network: it queues the alert for a sender thread. The sender XADDs in order;
when Redis is unreachable it moves the alert, and every later one, to the bounded journal, and replays the
journal oldest first once Redis answers again (exponential backoff with jitter in between).

Exactly once by id: each XADD runs in a Lua script together with `SET gw:alerts:sent:<id> NX EX ttl`, so an
alert whose XADD reached Redis but whose reply was lost is not added twice when it is replayed.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.typing import EncodableT

from contracts.alerts import Alert
from contracts.bus import ALERTS_MAXLEN, ALERTS_STREAM
from detection.journal import AlertJournal

log = logging.getLogger(__name__)

SENT_PREFIX = "gw:alerts:sent:"
# KEYS: stream, sent-marker. ARGV: ttl, maxlen, field, value, [field, value].
_XADD_ONCE = """
if tonumber(ARGV[1]) > 0 then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return false end
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
"""
_REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)


@dataclass
class PublisherCounts:
    sent: int = 0
    duplicates: int = 0  # replays Redis had already taken (reply lost)
    journaled: int = 0
    replayed: int = 0
    failed: int = 0  # rejected by Redis for a reason other than being down (kept in the journal)


class RedisAlertPublisher:
    """Implements `contracts.AlertSink`."""

    def __init__(
        self,
        redis_url: str,
        journal_dir: Path,
        *,
        maxlen: int = ALERTS_MAXLEN,
        stream: str = ALERTS_STREAM,
        queue_size: int = 1000,
        journal_max_entries: int = 100_000,
        journal_max_bytes: int = 512 * 2**20,
        socket_timeout_s: float = 2.0,
        backoff_max_s: float = 10.0,
        dedupe_ttl_s: int = 7 * 86_400,
    ) -> None:
        self.stream, self.maxlen, self.dedupe_ttl_s = stream, maxlen, dedupe_ttl_s
        self.backoff_max_s = backoff_max_s
        self.journal = AlertJournal(journal_dir, max_entries=journal_max_entries, max_bytes=journal_max_bytes)
        self.counts = PublisherCounts()
        self._redis = redis.Redis.from_url(
            redis_url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s, retry=None
        )
        self._script = self._redis.register_script(_XADD_ONCE)
        self._queue: queue.Queue[tuple[bytes, bytes | None]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._connected = True
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="alert-publisher", daemon=True)
        self._thread.start()

    # --- AlertSink -------------------------------------------------------------------------------------
    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None:
        item = (alert.model_dump_json().encode(), snapshot or None)
        self._idle.clear()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.journal.append(*item)  # the sender is far behind: keep order by going through the journal
            self.counts.journaled += 1
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued if Redis answers within `timeout`; whatever is left stays in the journal."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.drained and self._connected:
            self._idle.wait(0.05)
        self._deadline = deadline
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=max(1.0, deadline - time.monotonic()) + 5.0)
        while True:  # anything the sender did not take goes to disk
            try:
                self.journal.append(*self._queue.get_nowait())
                self.counts.journaled += 1
            except queue.Empty:
                break
        self._redis.close()

    # --- state -----------------------------------------------------------------------------------------
    @property
    def drained(self) -> bool:
        return self._queue.empty() and len(self.journal) == 0 and self._idle.is_set()

    def wait_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.drained:
                return True
            self._idle.wait(0.05)
        return self.drained

    @property
    def connected(self) -> bool:
        return self._connected

    # --- sender ----------------------------------------------------------------------------------------
    def _xadd(self, alert_json: bytes, snapshot: bytes | None) -> bool:
        alert_id = json.loads(alert_json)["id"]
        args: list[EncodableT] = [self.dedupe_ttl_s, self.maxlen, "alert", alert_json]
        if snapshot:
            args += ["snapshot", snapshot]
        result = self._script(keys=[self.stream, f"{SENT_PREFIX}{alert_id}"], args=args)
        if result is None:
            self.counts.duplicates += 1
            return False
        return True

    def _set_connected(self, up: bool, error: Exception | None = None) -> None:
        if up != self._connected:
            self._connected = up
            if up:
                log.info("redis is back: replaying %d journaled alerts", len(self.journal))
            else:
                log.warning("redis unreachable (%s): journaling alerts", error)

    def _replay(self) -> None:
        """Send the journal, oldest first; raises (leaving the rest) when Redis fails again."""
        for entry in self.journal.peek(100):
            if self._xadd(entry.alert_json, entry.snapshot):
                self.counts.sent += 1
            self.journal.remove(entry.seq)
            self.counts.replayed += 1

    def _spool_queue(self) -> None:
        """While Redis is down, move queued alerts to disk: memory stays bounded and order is kept."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            self.journal.append(*item)
            self.counts.journaled += 1

    def _finished(self) -> bool:
        if not self._stop.is_set():
            return False
        if time.monotonic() > self._deadline or not self._connected:
            return True
        return self._queue.empty() and len(self.journal) == 0

    def _run(self) -> None:
        backoff = 0.2
        while not self._finished():
            if not self._connected:
                self._spool_queue()
                self._wake.wait(backoff * (0.5 + random.random()))
                self._wake.clear()
                backoff = min(self.backoff_max_s, backoff * 2)
                self._probe()
                continue
            backoff = 0.2
            try:
                if len(self.journal):
                    self._replay()
                    continue
                try:
                    item = self._queue.get(timeout=0.2)
                except queue.Empty:
                    self._idle.set()
                    continue
                try:
                    sent = self._xadd(*item)
                except BaseException:
                    self.journal.append(*item)  # not sent: keep it, first in line for the replay
                    self.counts.journaled += 1
                    raise
                if sent:
                    self.counts.sent += 1
            except _REDIS_DOWN as exc:
                self._set_connected(False, exc)
            except redis.ResponseError as exc:  # e.g. OOM or a read-only replica: keep the alert, back off
                self.counts.failed += 1
                self._set_connected(False, exc)

    def _probe(self) -> None:
        try:
            self._redis.ping()
        except (*_REDIS_DOWN, redis.ResponseError) as exc:
            self._set_connected(False, exc)
        else:
            self._set_connected(True)
