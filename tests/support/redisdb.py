"""Redis DBs for the tests, one per holder at a time: on the suite's private server or an external one.

By default the suite starts its own server (`tests.support.servers.RedisServer`) and hands out its 64 DBs in
turn, each flushed before and after use. `GRIDWATCH_TEST_REDIS_URL=redis://[:password@]host:port` points the
suite at an external server instead: it then uses only DBs that are empty when it takes them, among
`GRIDWATCH_TEST_REDIS_DBS` (default `1-15`; e.g. `9-15` or `3,5,7`), flushes each after use, and never
touches a DB that holds a key it did not write. Pub/sub is server-wide; GridWatch's channels carry the DB
number.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import redis

from tests.support.servers import RedisServer, ServerError, redacted

URL_ENV = "GRIDWATCH_TEST_REDIS_URL"
DBS_ENV = "GRIDWATCH_TEST_REDIS_DBS"


def _connect(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise ServerError(f"Redis is not reachable at {redacted(url)} ({exc})") from None
    return client


def parse_db_numbers(spec: str) -> list[int]:
    """`"9-15"`, `"3,5,7"` or `"1-3,9"` -> the DB numbers, in order."""
    numbers: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            numbers.extend(range(int(low), int(high or low) + 1))
        except ValueError:
            raise ServerError(f"{DBS_ENV}={spec!r}: expected numbers and ranges like 9-15 or 3,5,7") from None
    if not numbers:
        raise ServerError(f"{DBS_ENV}={spec!r} names no DB")
    return numbers


class RedisDatabases:
    """Leases the DBs of one server, each to one holder at a time, in turn (a DB just given back is the last
    to be given again, so a straggling subscriber of one test does not hear the next)."""

    def __init__(self, base_url: str, numbers: list[int], external: bool) -> None:
        self.base_url = base_url
        self.numbers = list(numbers)
        self.external = external
        self._leased: set[int] = set()
        self._next = 0
        self._lock = threading.Lock()

    def url(self, db: int) -> str:
        parts = urlsplit(self.base_url)
        return urlunsplit(parts._replace(path=f"/{db}"))

    def _candidates(self) -> list[int]:
        with self._lock:
            start = self._next
            order = self.numbers[start:] + self.numbers[:start]
            return [n for n in order if n not in self._leased]

    def _take(self) -> tuple[int, redis.Redis]:
        busy: list[str] = []
        for db in self._candidates():
            client = _connect(self.url(db))
            if self.external:
                keys = int(client.dbsize())
                if keys:  # someone else's data: never ours to flush
                    busy.append(f"{db} ({keys} keys)")
                    client.close()
                    continue
            else:
                client.flushdb()
            with self._lock:
                if db in self._leased:  # taken meanwhile by another thread
                    client.close()
                    continue
                self._leased.add(db)
                self._next = (self.numbers.index(db) + 1) % len(self.numbers)
            return db, client
        where = redacted(self.base_url) if self.external else "the private server"
        raise ServerError(
            f"no free Redis DB on {where} among {self.numbers} (leased: {sorted(self._leased)}; "
            f"not empty: {', '.join(busy) or 'none'}); set {DBS_ENV} to DBs the tests may use"
        )

    @contextmanager
    def lease(self) -> Iterator[str]:
        """The URL of a DB that is empty now and is flushed when the holder is done."""
        db, client = self._take()
        try:
            yield self.url(db)
        finally:
            try:
                client.flushdb()
            finally:
                client.close()
                with self._lock:
                    self._leased.discard(db)


@contextmanager
def redis_service() -> Iterator[RedisDatabases]:
    """The external server named by `GRIDWATCH_TEST_REDIS_URL`, else a private one started here."""
    external = os.environ.get(URL_ENV)
    if external:
        _connect(external).close()
        yield RedisDatabases(external, parse_db_numbers(os.environ.get(DBS_ENV, "1-15")), external=True)
        return
    with RedisServer() as server:
        yield RedisDatabases(server.url, list(range(server.databases)), external=False)
