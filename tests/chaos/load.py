"""The chaos harness's publisher child: steady alerts through the real `RedisAlertPublisher` until SIGTERM.

    python -m tests.chaos.load REDIS_URL JOURNAL_DIR HANDOVER_LOG RATE

Publishes RATE alerts a second (eight cameras at two places in the demo city, two rules each, frame times
spread over the last three days so that folds move an incident's first day, a small snapshot on every tenth),
and records each id in HANDOVER_LOG once `publish()` returned (fsynced every 50 ms, like the journal). On
SIGTERM it stops publishing, waits until its journal is empty (Redis holds everything) and exits 0, or 1 when
that took longer than two minutes. A child killed with SIGKILL leaves its journal for the next one on
JOURNAL_DIR (the same worker, restarted), which sends it first.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts import Alert, AlertKind, GeoPoint
from detection.publisher import RedisAlertPublisher
from tests.support.handover import HandoverLog

PLACES = (GeoPoint(lat=36.6135, lon=101.775), GeoPoint(lat=36.62, lon=101.785))  # st-nanguan, st-xiadu
SNAPSHOT = b"\xff\xd8" + bytes(range(256)) * 4 + b"\xff\xd9"


def make_alert(rng: random.Random, n: int) -> Alert:
    camera = rng.randrange(8)
    return Alert(
        kind=rng.choice((AlertKind.intrusion, AlertKind.loitering)),
        severity=rng.randint(1, 4),
        camera_id=f"chaos-cam-{camera}",
        captured_at=datetime.now(UTC) - timedelta(seconds=rng.uniform(0, 3 * 86_400)),
        location=PLACES[camera % 2],
        rule=f"rule-{rng.randrange(2)}",
        zone="z",
        detail=f"#{n}",
        worker_id="chaos-worker",
    )


def main(argv: list[str]) -> int:
    redis_url, journal, ids_path, rate = argv[0], Path(argv[1]), Path(argv[2]), float(argv[3])
    stop, parent = threading.Event(), os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    publisher = RedisAlertPublisher(redis_url, journal, socket_timeout_s=0.5, backoff_max_s=0.5)
    handover = HandoverLog(ids_path, fsync_every_s=0.05)
    rng = random.Random()
    n = 0
    while not stop.is_set() and os.getppid() == parent:  # a harness killed with SIGKILL leaves no load behind
        alert = make_alert(rng, n)
        publisher.publish(alert, SNAPSHOT if n % 10 == 0 else None)
        handover.record(alert.id)
        n += 1
        stop.wait(1.0 / rate)
    handover.close()
    drained = publisher.wait_drained(120)
    publisher.close()
    print(f"published {n}, drained {drained}, counts {publisher.counts}", flush=True)
    return 0 if drained else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
