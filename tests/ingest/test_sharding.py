"""Integration: three (then four) real worker processes share 30 cameras through real Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from contracts import CAMERAS_KEY, Camera
from ingest.cameras import publish_cameras
from ingest.sharding import assign
from tests.ingest.conftest import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT = 2.0


class WorkerProcess:
    def __init__(self, worker_id: str, redis_url: str) -> None:
        self.worker_id = worker_id
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.ingest.shard_worker",
                "--worker-id",
                worker_id,
                "--redis",
                redis_url,
                "--heartbeat",
                str(HEARTBEAT),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.events: list[dict[str, object]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def owned(self) -> set[str]:
        changes = [e for e in list(self.events) if "cameras" in e]
        return set(changes[-1]["cameras"]) if changes and self.proc.poll() is None else set()  # type: ignore

    def took_at(self, camera: str) -> float | None:
        for e in list(self.events):
            if camera in e.get("cameras", ()):  # type: ignore[operator]
                return float(e["t"])  # type: ignore[arg-type]
        return None

    def dropped_at(self, camera: str, after: float) -> float | None:
        for e in list(self.events):
            if "cameras" in e and float(e["t"]) >= after and camera not in e["cameras"]:  # type: ignore
                return float(e["t"])  # type: ignore[arg-type]
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._thread.join(5)


def owners(workers: list[WorkerProcess]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for w in workers:
        for cam in w.owned():
            out.setdefault(cam, []).append(w.worker_id)
    return out


def each_owned_once(workers: list[WorkerProcess], cameras: set[str]) -> bool:
    """Every camera read by exactly one of `workers`, as rendezvous hashing over exactly them assigns it."""
    expected = assign(cameras, [w.worker_id for w in workers])
    return owners(workers) == {c: [w] for c, w in expected.items()}


def test_thirty_cameras_three_workers_death_and_join(
    clips: dict[str, Path], rtsp_server, redis_client: redis.Redis, redis_url: str
) -> None:
    server = rtsp_server({"/cam": clips["loop"]})
    cameras = [Camera(id=f"cam-{i:02d}", url=server.url("/cam"), sample_fps=0.5) for i in range(30)]
    ids = {c.id for c in cameras}
    publish_cameras(redis_client, cameras, replace=True)
    workers = [WorkerProcess(f"w{i}", redis_url) for i in range(1, 4)]
    try:
        wait_until(lambda: each_owned_once(workers, ids), 90, "every camera owned exactly once by 3 workers")
        assert all(w.owned() for w in workers)

        # kill -9: the dead worker's cameras are owned again within two heartbeats
        victim = workers[0]
        lost = victim.owned()
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(30)
        killed_at = time.time()
        survivors = workers[1:]
        wait_until(lambda: each_owned_once(survivors, ids), 60, "the dead worker's cameras owned again")
        taken = max(min(t for w in survivors if (t := w.took_at(c)) is not None) for c in lost)
        assert taken - killed_at <= 2 * HEARTBEAT + 1.0, f"takeover after {taken - killed_at:.1f} s"

        # a fourth worker joins: only about a quarter of the cameras move, all to it
        before = owners(survivors)
        joiner = WorkerProcess("w4", redis_url)
        workers.append(joiner)
        everyone = [*survivors, joiner]
        wait_until(lambda: joiner.owned() and each_owned_once(everyone, ids), 90, "the new worker's share")
        after = owners(everyone)
        moved = {c for c in ids if after[c] != before[c]}
        assert moved == joiner.owned()
        assert 3 <= len(moved) <= 13, f"{len(moved)} of 30 moved"
        for cam in moved:  # the old owner let go within one heartbeat of the new owner taking it
            old = next(w for w in survivors if w.worker_id == before[cam][0])
            took = joiner.took_at(cam)
            assert took is not None
            dropped = old.dropped_at(cam, took - HEARTBEAT)
            assert dropped is not None and dropped - took <= HEARTBEAT, cam

        # SIGTERM drains: the others take the leaver's cameras before it stops reading
        leaver = survivors[0]
        handed = leaver.owned()
        leaver.proc.send_signal(signal.SIGTERM)
        assert leaver.proc.wait(60) == 0
        stopped = next(float(e["t"]) for e in leaver.events if e.get("event") == "stopped")  # type: ignore
        rest = [w for w in everyone if w is not leaver]
        wait_until(lambda: each_owned_once(rest, ids), 60, "the leaver's cameras owned again")
        for cam in handed:
            took = min(t for w in rest if (t := w.took_at(cam)) is not None)
            assert took <= stopped, f"{cam} was dropped before it was handed over"
    finally:
        for w in workers:
            w.close()
        redis_client.delete(CAMERAS_KEY)
