"""Sharing cameras among workers: heartbeats in Redis plus rendezvous (highest-random-weight) hashing.

Every worker scores `hash(worker, camera)` for each live worker and owns the cameras where it scores
highest. All workers see the same live set, so they agree without talking to each other; a worker that
joins or dies changes the owner only of the cameras it wins or held (about 1/N of them).

Liveness: each worker `ZADD`s its id to `gw:workers:live` with Redis' own clock as the score every heartbeat;
a worker is live while its score is younger than one and a half heartbeats. Workers poll the live set four
times per heartbeat, so a dead worker's cameras are owned again within two heartbeats, and a camera handed
to a joining worker is dropped by its old owner within a quarter of one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from collections.abc import Iterable

import redis

from contracts.bus import WORKERS_PREFIX

log = logging.getLogger(__name__)

LIVE_KEY = f"{WORKERS_PREFIX}live"  # sorted set: worker id -> last heartbeat (Redis time, seconds)


def worker_key(worker_id: str) -> str:
    return f"{WORKERS_PREFIX}{worker_id}"


def _score(worker_id: str, camera_id: str) -> int:
    digest = hashlib.blake2b(f"{worker_id}\x00{camera_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_owner(camera_id: str, workers: Iterable[str]) -> str | None:
    """The worker that owns `camera_id` among `workers` (None when there are none)."""
    best: tuple[int, str] | None = None
    for worker in workers:
        candidate = (_score(worker, camera_id), worker)
        if best is None or candidate > best:
            best = candidate
    return best[1] if best else None


def assign(camera_ids: Iterable[str], workers: Iterable[str]) -> dict[str, str]:
    live = sorted(set(workers))
    return {c: owner for c in camera_ids if (owner := rendezvous_owner(c, live)) is not None}


class WorkerRegistry:
    """This worker's registration in Redis and its view of the live worker set."""

    def __init__(self, redis_client: redis.Redis, worker_id: str, ttl_s: float, record_ttl_s: float = 60.0):
        self.redis = redis_client
        self.worker_id = worker_id
        self.ttl_s = ttl_s
        self.record_ttl_ms = max(1000, int(max(record_ttl_s, ttl_s * 4) * 1000))

    def _now(self) -> float:
        seconds, micros = self.redis.time()
        return float(seconds) + micros / 1e6

    def heartbeat(self, owned: Iterable[str]) -> None:
        """Register as live now and publish the cameras this worker reads (for tools and tests)."""
        now = self._now()
        record = {
            "worker_id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "heartbeat_at": now,
            "cameras": sorted(owned),
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(LIVE_KEY, {self.worker_id: now})
        pipe.set(worker_key(self.worker_id), json.dumps(record), px=self.record_ttl_ms)
        # long-dead entries are garbage: drop them so the set does not grow with every restart
        pipe.zremrangebyscore(LIVE_KEY, "-inf", now - max(60.0, self.ttl_s * 20))
        pipe.execute()

    def live_workers(self) -> set[str]:
        now = self._now()
        members = self.redis.zrangebyscore(LIVE_KEY, now - self.ttl_s, "+inf")
        live = {m.decode() if isinstance(m, bytes) else str(m) for m in members}
        live.add(self.worker_id)  # this worker is alive by definition, even if its last heartbeat was late
        return live

    def leave(self) -> None:
        """Deregister (a graceful stop): the others take this worker's cameras at their next poll."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(LIVE_KEY, self.worker_id)
        pipe.delete(worker_key(self.worker_id))
        pipe.execute()


def read_workers(redis_client: redis.Redis) -> dict[str, dict[str, object]]:
    """Registration records of workers that heartbeated recently, by worker id (tools and tests)."""
    out: dict[str, dict[str, object]] = {}
    ids = [m.decode() if isinstance(m, bytes) else str(m) for m in redis_client.zrange(LIVE_KEY, 0, -1)]
    if not ids:
        return out
    for worker_id, raw in zip(ids, redis_client.mget([worker_key(w) for w in ids]), strict=True):
        if raw is not None:
            out[worker_id] = json.loads(raw)
    return out
