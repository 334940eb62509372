"""`ClipRequestListener`: a thread that reads operators' "save the last N seconds" from Redis.

The center appends a `ClipRequest` to the stream `contracts.CLIP_REQUESTS_STREAM` (capped); every worker reads
the whole stream (XREAD, no consumer group) and hands each request to its handler, the recorder's `save_last`,
which returns False for a camera this worker does not read (the worker that reads it makes the clip).

It starts at the stream's end (what was asked before this worker started is not its business) and remembers
the last id it read, so a Redis outage loses nothing that is still in the stream once it reconnects (with
capped exponential backoff and full jitter). A request older than `max_age_s` (default a minute, e.g. one
read after a long outage) is skipped: "the last N seconds" of then are gone from the ring anyway. An entry
that does not decode is logged and skipped. Everything is counted (`ListenerCounts`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import redis

from contracts import CLIP_REQUESTS_STREAM, ClipRequest, decode_clip_request

log = logging.getLogger(__name__)

_Entry = tuple[bytes, dict[bytes, bytes]]
_StreamsReply = list[tuple[bytes, list[_Entry]]]


@dataclass
class ListenerCounts:
    received: int = 0  # entries read
    handled: int = 0  # requests this worker took (handler returned True)
    not_mine: int = 0  # requests for a camera another worker reads
    stale: int = 0  # requests older than max_age_s, skipped
    bad: int = 0  # entries that did not decode, skipped
    errors: int = 0  # handler raised
    reconnects: int = 0  # Redis errors survived


class ClipRequestListener:
    def __init__(
        self,
        redis_client: redis.Redis,
        handler: Callable[[ClipRequest], bool],
        *,
        stream: str = CLIP_REQUESTS_STREAM,
        max_age_s: float = 60.0,
        block_ms: int = 1000,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if block_ms < 1 or max_age_s <= 0:
            raise ValueError("block_ms and max_age_s must be positive")
        self.redis = redis_client
        self.handler = handler
        self.stream = stream
        self.max_age_s = max_age_s
        self.block_ms = block_ms
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.counts = ListenerCounts()
        self._clock = clock
        self._last_id: bytes | str | None = None  # None: not yet at the stream's end
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="clip-requests", daemon=True)
        self._thread.start()

    def wait_started(self, timeout: float) -> bool:
        """True once the listener knows where the stream ends (requests from then on reach the handler)."""
        return self._started.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("clip request listener did not stop within %.0f s", timeout)
            self._thread = None

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if self._last_id is None:
                    self._last_id = self._stream_end()
                    self._started.set()
                reply = cast(
                    _StreamsReply,
                    self.redis.xread({self.stream: self._last_id}, count=100, block=self.block_ms),
                )
            except redis.RedisError as exc:
                self.counts.reconnects += 1
                if attempt == 0:
                    log.warning("clip requests: Redis error (%s); retrying with backoff", exc)
                cap = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(attempt, 30))
                attempt += 1
                self._stop.wait(random.uniform(0, cap))
                continue
            if attempt:
                log.info("clip requests: reading %s again", self.stream)
                attempt = 0
            for _stream, entries in reply or ():
                for entry_id, entry in entries:
                    self._last_id = entry_id
                    self._handle(entry_id, entry)

    def _stream_end(self) -> bytes | str:
        """The id of the stream's newest entry ('0-0' for none): like '$', but fixed before the first read,
        so nothing added between two reads is missed."""
        newest = cast(list[_Entry], self.redis.xrevrange(self.stream, count=1))
        return newest[0][0] if newest else "0-0"

    def _handle(self, entry_id: bytes | str, fields: dict[bytes, bytes]) -> None:
        self.counts.received += 1
        try:
            request = decode_clip_request(fields)
        except ValueError as exc:
            self.counts.bad += 1
            log.warning("clip requests: skipping entry %r that is not a clip request (%s)", entry_id, exc)
            return
        age = (self._clock() - request.requested_at).total_seconds()
        if age > self.max_age_s:
            self.counts.stale += 1
            log.info(
                "clip request %s for camera %s is %.0f s old: skipped",
                request.request_id,
                request.camera_id,
                age,
            )
            return
        started = time.monotonic()
        try:
            taken = self.handler(request)
        except Exception:  # a thread boundary: one bad request must not end the listener
            self.counts.errors += 1
            log.exception("clip request %s for camera %s failed", request.request_id, request.camera_id)
            return
        if taken:
            self.counts.handled += 1
            log.info(
                "clip request %s: saving the last %.0f s of camera %s (%.0f ms)",
                request.request_id,
                request.seconds,
                request.camera_id,
                (time.monotonic() - started) * 1000,
            )
        else:
            self.counts.not_mine += 1
