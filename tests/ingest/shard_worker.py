"""One sharded ingest worker process for the sharding test (what `gridwatch ingest --processes N` runs, with a
counting sink instead of detection).

    python -m tests.ingest.shard_worker --worker-id w1 --redis redis://127.0.0.1:<port>/<db> --heartbeat 2

Prints one JSON line per ownership change: {"worker": .., "t": unix time, "cameras": [...]}; and
{"worker": .., "t": .., "event": "stopped"} after a graceful stop.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Mapping

import redis

from contracts import Alert, Camera, Frame
from ingest.cameras import RedisCameraSource
from ingest.config import IngestConfig
from ingest.run import serve
from ingest.worker import IngestWorker

log = logging.getLogger("shard_worker")
_print_lock = threading.Lock()


def emit(record: dict[str, object]) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


class CountingSink:
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.frames: dict[str, int] = {}

    def submit(self, frame: Frame) -> None:
        self.frames[frame.camera_id] = self.frames.get(frame.camera_id, 0) + 1

    def dropped(self, camera_id: str) -> int:
        return 0  # counts every frame, drops none

    def cameras_changed(self, cameras: Mapping[str, Camera]) -> None:
        emit({"worker": self.worker_id, "t": time.time(), "cameras": sorted(cameras)})


class LoggingAlerts:
    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None:
        log.info("alert %s %s: %s", alert.kind.value, alert.camera_id, alert.detail)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--heartbeat", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format=f"{args.worker_id} %(name)s %(message)s"
    )
    client = redis.Redis.from_url(args.redis)
    config = IngestConfig(
        worker_id=args.worker_id,
        sharded=True,
        heartbeat_s=args.heartbeat,
        offline_after_s=5,
        backoff_initial_s=0.5,
        backoff_max_s=2,
    )
    worker = IngestWorker(
        config, RedisCameraSource(client), CountingSink(args.worker_id), LoggingAlerts(), client
    )
    serve(worker, stop_timeout=20)
    emit({"worker": args.worker_id, "t": time.time(), "event": "stopped"})
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
