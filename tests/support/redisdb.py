"""A real Redis logical DB for one test: reachable or a clear failure, flushed before and after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis


@contextmanager
def flushed_db(url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.fail(f"Redis is not reachable at {url} ({exc}); start it (CI's .ci/run does)")
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()
