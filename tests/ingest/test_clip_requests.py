"""The clip request listener on the suite's private Redis: it starts at the stream's end, hands each request
to the handler, skips stale and undecodable entries (counted), survives a handler that raises, and carries on
after the connection drops, losing nothing still in the stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from contracts import CLIP_REQUESTS_STREAM, ClipRequest, encode_clip_request
from ingest.clip_requests import ClipRequestListener


def request(n: int, camera_id: str = "cam-1", age_s: float = 0.0) -> ClipRequest:
    return ClipRequest(
        request_id=f"req-{n}",
        camera_id=camera_id,
        seconds=8,
        requested_at=datetime.now(UTC) - timedelta(seconds=age_s),
        requested_by="alice",
    )


class Handler:
    """The recorder's `save_last`: True for the cameras this worker reads."""

    def __init__(self, mine: set[str], fail_on: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.mine, self.fail_on = mine, fail_on
        self.calls: list[ClipRequest] = []
        self._lock = threading.Lock()

    def __call__(self, req: ClipRequest) -> bool:
        with self._lock:
            self.calls.append(req)
        if req.request_id in self.fail_on:
            raise RuntimeError("the recorder broke")
        return req.camera_id in self.mine

    def ids(self) -> list[str]:
        with self._lock:
            return [c.request_id for c in self.calls]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    yield c
    c.close()


@pytest.fixture
def listen(client: redis.Redis) -> Iterator[Callable[..., ClipRequestListener]]:
    started: list[ClipRequestListener] = []

    def make(handler: Handler, **kw: object) -> ClipRequestListener:
        listener = ClipRequestListener(client, handler, block_ms=50, **kw)  # type: ignore[arg-type]
        listener.start()
        started.append(listener)
        if not listener.wait_started(30):
            pytest.fail("the listener did not reach the stream within 30 s")
        return listener

    yield make
    for listener in started:
        listener.stop()


def wait_for(condition: Callable[[], object], what: str, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within_s} s: {what}")
        time.sleep(0.01)


def xadd(client: redis.Redis, fields: dict[str, bytes]) -> None:
    client.xadd(CLIP_REQUESTS_STREAM, fields)  # type: ignore[arg-type]


def test_requests_after_the_start_reach_the_handler_in_order(
    client: redis.Redis, listen: Callable[..., ClipRequestListener]
) -> None:
    xadd(client, encode_clip_request(request(0)))  # before the start: not this worker's business
    handler = Handler(mine={"cam-1"})
    listener = listen(handler)
    for n in range(1, 4):
        xadd(client, encode_clip_request(request(n, camera_id="cam-1" if n != 2 else "cam-other")))
    wait_for(lambda: listener.counts.received == 3, "three requests read")
    assert handler.ids() == ["req-1", "req-2", "req-3"]
    assert handler.calls[0] == request(1).model_copy(update={"requested_at": handler.calls[0].requested_at})
    assert (listener.counts.handled, listener.counts.not_mine) == (2, 1)


def test_stale_and_bad_entries_are_skipped_and_counted(
    client: redis.Redis, listen: Callable[..., ClipRequestListener], caplog: pytest.LogCaptureFixture
) -> None:
    handler = Handler(mine={"cam-1"}, fail_on={"req-3"})
    listener = listen(handler, max_age_s=60)
    xadd(client, encode_clip_request(request(1, age_s=120)))  # asked before an outage: the ring moved on
    xadd(client, {"request": b"{not json"})
    xadd(client, {"something": b"else"})
    xadd(client, encode_clip_request(request(3)))  # the handler raises
    xadd(client, encode_clip_request(request(4)))
    wait_for(lambda: listener.counts.received == 5, "five entries read")
    assert handler.ids() == ["req-3", "req-4"]
    counts = listener.counts
    assert (counts.stale, counts.bad, counts.errors, counts.handled) == (1, 2, 1, 1)
    assert "req-3" in caplog.text and "the recorder broke" in caplog.text


def test_a_dropped_connection_loses_nothing_still_in_the_stream(
    client: redis.Redis, redis_url: str, listen: Callable[..., ClipRequestListener]
) -> None:
    handler = Handler(mine={"cam-1"})
    listener = listen(handler, backoff_initial_s=0.2, backoff_max_s=0.2)
    xadd(client, encode_clip_request(request(1)))
    wait_for(lambda: handler.ids() == ["req-1"], "the first request")
    killer = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        before = listener.counts.reconnects
        for _ in range(500):  # cut the listener's connection (it sits in XREAD BLOCK) until it notices
            for info in killer.client_list():
                if "xread" in str(info.get("cmd", "")):
                    killer.client_kill_filter(_id=info["id"])
            if listener.counts.reconnects > before:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the listener never saw its connection dropped")
        xadd(client, encode_clip_request(request(2)))  # while it backs off
    finally:
        killer.close()
    xadd(client, encode_clip_request(request(3)))
    wait_for(lambda: handler.ids()[-1:] == ["req-3"], "the requests after the cut")
    assert handler.ids() == ["req-1", "req-2", "req-3"]  # each once, none lost


def test_a_stream_that_does_not_exist_yet_is_waited_for(
    client: redis.Redis, listen: Callable[..., ClipRequestListener]
) -> None:
    assert client.exists(CLIP_REQUESTS_STREAM) == 0
    handler = Handler(mine={"cam-1"})
    listener = listen(handler)
    xadd(client, encode_clip_request(request(1)))
    wait_for(lambda: listener.counts.handled == 1, "the first request of a new stream")
