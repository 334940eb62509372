"""The only module that writes alerts to Redis: written ahead to a disk journal, then XADDed to `gw:alerts`.

`publish` appends the alert and its snapshot to the journal (`detection.journal`) and returns: no network, one
`writev` into the kernel under a lock. A sender thread reads the journal oldest first, sends a batch per round
trip (pipelined), and acknowledges entries to the journal only once Redis has answered for them. When Redis is
unreachable it backs off (exponential, with jitter) and resumes where it stopped; an outage, the replay after
it and the start after a crash are one path: send what the journal holds, in order. A new publisher on the
same directory sends what an earlier process left.

What can still be lost:
- kill -9, an OOM kill or a crash of the worker: nothing `publish` returned for (the record is in the kernel,
  which writes it out whatever becomes of the process). An alert whose `publish` the kill interrupted was
  never handed over.
- a power cut or a kernel crash: the alerts published in the last group-commit window that Redis had not
  taken yet: at most `journal_commit_interval_s` (50 ms) plus one fsync's time of alerts, fewer when
  `journal_commit_every` (256) appends fill the window first. Alerts the journal did not lose, but whose
  acknowledgement it lost, are sent again: no-ops, below.
- an outage longer than the journal holds: the journal's bounds drop the oldest snapshots first, then the
  oldest alerts, counted (`journal.dropped_snapshots`, `journal.dropped_alerts`).
- a disk that refuses the write: `publish` raises OSError, and the alert was not taken.

Exactly once by id: each XADD runs in a Lua script together with `SET gw:alerts:sent:<id> NX EX ttl`, so an
alert whose XADD reached Redis but whose acknowledgement did not reach the journal (a lost reply, a kill
between the two) is not added twice when it is sent again within `dedupe_ttl_s`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.typing import EncodableT

from contracts.alerts import Alert
from contracts.bus import ALERTS_MAXLEN, ALERTS_STREAM
from detection.journal import AlertJournal, JournalEntry

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
    published: int = 0  # handed to publish() and written ahead
    sent: int = 0  # added to the stream
    duplicates: int = 0  # sent again (lost reply, restart) and already in Redis: not added
    journaled: int = 0  # waited in the journal through an outage (held when Redis was found unreachable)
    replayed: int = 0  # sent after waiting through an outage, or left by an earlier process
    recovered: int = 0  # left in the journal by an earlier process, found at start
    failed: int = 0  # batches Redis refused for a reason other than being down (kept, retried)


class RedisAlertPublisher:
    """Implements `contracts.AlertSink`."""

    def __init__(
        self,
        redis_url: str,
        journal_dir: Path,
        *,
        maxlen: int = ALERTS_MAXLEN,
        stream: str = ALERTS_STREAM,
        journal_max_entries: int = 100_000,
        journal_max_bytes: int = 512 * 2**20,
        journal_commit_interval_s: float = 0.05,
        journal_commit_every: int = 256,
        batch_size: int = 100,
        batch_max_bytes: int = 4 * 2**20,
        socket_timeout_s: float = 2.0,
        backoff_max_s: float = 10.0,
        dedupe_ttl_s: int = 7 * 86_400,
    ) -> None:
        if batch_size < 1 or batch_max_bytes < 1:
            raise ValueError("batches must be positive")
        self.stream, self.maxlen, self.dedupe_ttl_s = stream, maxlen, dedupe_ttl_s
        self.backoff_max_s = backoff_max_s
        self.batch_size, self.batch_max_bytes = batch_size, batch_max_bytes
        self.journal = AlertJournal(
            journal_dir,
            max_entries=journal_max_entries,
            max_bytes=journal_max_bytes,
            commit_interval_s=journal_commit_interval_s,
            commit_every=journal_commit_every,
        )
        self.counts = PublisherCounts(recovered=len(self.journal))
        self._counts_lock = threading.Lock()
        self._redis = redis.Redis.from_url(
            redis_url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s, retry=None
        )
        self._join_s = socket_timeout_s * 2 + 1.0  # one batch's round trip, at worst
        self._script = self._redis.register_script(_XADD_ONCE)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connected = True
        # Entries up to this seq waited through an outage (or an earlier process): sending them is a replay.
        self._outage_through = self.journal.last_seq
        if self.counts.recovered:
            log.info("replaying %d alerts an earlier run left in %s", self.counts.recovered, journal_dir)
        self._thread = threading.Thread(target=self._run, name="alert-publisher", daemon=True)
        self._thread.start()

    # --- AlertSink -------------------------------------------------------------------------------------
    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None:
        """Write the alert ahead to the journal (it survives this process from here on) and wake the sender.
        Raises OSError when the disk refuses the write: then the alert was not taken."""
        self.journal.append(alert.model_dump_json().encode(), snapshot or None)
        with self._counts_lock:
            self.counts.published += 1
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is journaled if Redis answers within `timeout`; whatever is left stays in the journal,
        for the next publisher on this directory."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.drained and self._connected:
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self._join_s)
        if self._thread.is_alive():  # stuck in a round trip: it finds the journal closed and stops
            log.warning("alert sender did not stop within %.1f s", self._join_s)
        self.journal.close()
        self._redis.close()

    # --- state -----------------------------------------------------------------------------------------
    @property
    def drained(self) -> bool:
        """Everything published is in Redis (the journal holds nothing)."""
        return len(self.journal) == 0

    def wait_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.drained:
                return True
            time.sleep(0.02)
        return self.drained

    @property
    def connected(self) -> bool:
        return self._connected

    # --- sender ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            if not self._connected:
                if self._stop.wait(backoff * (0.5 + random.random())):
                    break
                backoff = min(self.backoff_max_s, backoff * 2)
                self._probe()
                continue
            backoff = 0.2
            try:
                entries = self.journal.peek(self.batch_size, self.batch_max_bytes)
            except OSError:  # a failing disk: say so, and try again rather than let the thread die
                log.exception("reading the alert journal %s failed", self.journal.directory)
                self._stop.wait(1.0)
                continue
            if not entries:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            try:
                self._send(entries)
            except _REDIS_DOWN as exc:
                self.journal.release()  # what the bounds dropped from this batch meanwhile is lost
                self._unreachable(exc)
            except redis.ResponseError as exc:  # e.g. OOM or a read-only replica: keep the alerts, back off
                self.journal.release()
                with self._counts_lock:
                    self.counts.failed += 1
                self._unreachable(exc)

    def _send(self, entries: list[JournalEntry]) -> None:
        """XADD `entries` in one round trip; acknowledge those Redis took, up to the first it refused."""
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            args: list[EncodableT] = [self.dedupe_ttl_s, self.maxlen, "alert", entry.alert_json]
            if entry.snapshot:
                args += ["snapshot", entry.snapshot]
            self._script(
                keys=[self.stream, SENT_PREFIX + _dedupe_key(entry.alert_json)], args=args, client=pipe
            )
        # Not a transaction: after a refused command Redis runs the rest too. Those stay in the journal with
        # the refused one and are resent as no-ops, so a refusal (OOM) can put the refused alert after them.
        results = pipe.execute(raise_on_error=False)
        done, refused = None, None
        sent = duplicates = replayed = 0
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, Exception):
                refused = result
                break
            if result is None:
                duplicates += 1
            else:
                sent += 1
            if entry.seq <= self._outage_through:
                replayed += 1
            done = entry.seq
        if done is not None:
            self.journal.ack(done)
        with self._counts_lock:
            self.counts.sent += sent
            self.counts.duplicates += duplicates
            self.counts.replayed += replayed
        if refused is not None:
            raise refused

    def _unreachable(self, error: Exception) -> None:
        """Redis failed: what the journal holds now waits through an outage (counted once per entry)."""
        newly, last = self.journal.held_after(self._outage_through)
        self._outage_through = max(self._outage_through, last)
        with self._counts_lock:
            self.counts.journaled += newly
        if self._connected:
            self._connected = False
            log.warning("redis unreachable (%s): alerts wait in the journal", error)

    def _probe(self) -> None:
        try:
            self._redis.ping()
        except (*_REDIS_DOWN, redis.ResponseError) as exc:
            self._unreachable(exc)
        else:
            self._connected = True
            log.info("redis is back: sending %d journaled alerts", len(self.journal))


def _dedupe_key(alert_json: bytes) -> str:
    """The alert's id; for an entry that is not an alert (no id to read), a digest of its bytes, so that it
    still goes out once and the center's dead-letter stream gets it instead of it blocking the journal."""
    try:
        alert_id = json.loads(alert_json)["id"]
    except (ValueError, KeyError, TypeError):
        alert_id = None
    if isinstance(alert_id, str) and alert_id:
        return alert_id
    return "sha256:" + hashlib.sha256(alert_json).hexdigest()
