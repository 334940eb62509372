"""Where a worker gets its camera definitions: a YAML file (standalone) or the center's registry in Redis.

Both sources answer `load()` with the full current set and `wait_changed(timeout)` with whether it may have
changed since the last `load()`, so a worker applies additions, changes and removals without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import redis
import yaml

from contracts import CAMERAS_KEY, Camera, CameraConfigError, cameras_channel, channel_db, parse_cameras

log = logging.getLogger(__name__)


class CameraSource(Protocol):
    def load(self) -> dict[str, Camera]:
        """All cameras, enabled or not, by id. Raises `CameraConfigError` on a bad definition."""
        ...

    def wait_changed(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when the set may have changed since the last `load()`."""
        ...

    def close(self) -> None: ...


class StaticCameraSource:
    """A fixed set (tests, embedding); `replace()` swaps it and signals a change."""

    def __init__(self, cameras: list[Camera] | dict[str, Camera]) -> None:
        self._cameras = dict(cameras) if isinstance(cameras, dict) else {c.id: c for c in cameras}
        self._changed = threading.Event()

    def replace(self, cameras: list[Camera]) -> None:
        self._cameras = {c.id: c for c in cameras}
        self._changed.set()

    def load(self) -> dict[str, Camera]:
        self._changed.clear()
        return dict(self._cameras)

    def wait_changed(self, timeout: float) -> bool:
        return self._changed.wait(timeout)

    def close(self) -> None:
        pass


class YamlCameraSource:
    """A YAML file (`{"cameras": [...]}`); a change of its modification time or size is a change."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def load(self) -> dict[str, Camera]:
        self._stamp = self._current_stamp()
        try:
            data = yaml.safe_load(self.path.read_text())
        except yaml.YAMLError as exc:
            raise CameraConfigError(f"{self.path}: not valid YAML: {exc}") from None
        return {c.id: c for c in parse_cameras(data, str(self.path))}

    def wait_changed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._current_stamp() != self._stamp:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(0.5, left))

    def close(self) -> None:
        pass


class RedisCameraSource:
    """The registry's hash `CAMERAS_KEY` (id -> Camera JSON); `cameras_channel(db)` messages signal changes.

    A full reload also happens every `resync_s`, so a missed message (pub/sub is fire-and-forget) heals.
    A definition that does not validate is logged and skipped; the other cameras keep working.
    """

    def __init__(self, redis_client: redis.Redis, resync_s: float = 30.0) -> None:
        self.redis = redis_client
        self.resync_s = resync_s
        self._pubsub: Any = None
        self._last_load = 0.0
        self._bad: set[str] = set()

    def _subscribe(self) -> None:
        if self._pubsub is None:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(cameras_channel(channel_db(self.redis)))
            self._pubsub = pubsub

    def load(self) -> dict[str, Camera]:
        try:
            self._subscribe()  # subscribe first: a change between read and subscribe is not lost
        except redis.RedisError as exc:
            log.warning("cannot subscribe to camera changes: %s", exc)
            self._pubsub = None
        raw = self.redis.hgetall(CAMERAS_KEY)
        self._last_load = time.monotonic()
        cameras: dict[str, Camera] = {}
        bad: set[str] = set()
        for key, value in raw.items():
            camera_id = key.decode() if isinstance(key, bytes) else str(key)
            try:
                camera = Camera.model_validate_json(value)
            except ValueError as exc:
                bad.add(camera_id)
                if camera_id not in self._bad:
                    log.error("camera %s: invalid definition in %s: %s", camera_id, CAMERAS_KEY, exc)
                continue
            cameras[camera.id] = camera
        self._bad = bad
        return cameras

    def wait_changed(self, timeout: float) -> bool:
        if time.monotonic() - self._last_load >= self.resync_s:
            return True
        if self._pubsub is None:
            time.sleep(timeout)
            return self._pubsub is None  # no subscription: reload to retry it
        changed = False
        try:
            message = self._pubsub.get_message(timeout=timeout)
            while message is not None:
                if message.get("type") == "message":
                    changed = True
                message = self._pubsub.get_message(timeout=0)
        except redis.RedisError as exc:
            log.warning("camera change channel lost: %s", exc)
            self._close_pubsub()
            return True
        return changed

    def _close_pubsub(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass
            self._pubsub = None

    def close(self) -> None:
        self._close_pubsub()


def publish_cameras(redis_client: redis.Redis, cameras: list[Camera], replace: bool = False) -> None:
    """Write cameras into the registry hash and announce them (as the center's registry does)."""
    pipe = redis_client.pipeline()
    if replace:
        pipe.delete(CAMERAS_KEY)
    for camera in cameras:
        pipe.hset(CAMERAS_KEY, camera.id, camera.model_dump_json())
    pipe.execute()
    for camera_id in [camera.id for camera in cameras] or ["*"]:  # none given: still announce, as "*"
        redis_client.publish(cameras_channel(channel_db(redis_client)), camera_id)
