"""The camera registry (SQL, source of truth) and its publication to Redis (`gw:cameras` hash, the
`gw:cameras:changed` channel). Each camera's cell is located from its position unless fixed by `cell_id`.
Stream URLs stay inside: `stream_url()` is for server-side use (the live view), APIs show them redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center_api.errors import Unprocessable
from center_api.grid import UNASSIGNED
from center_api.grid.yamlfile import read_yaml
from center_api.routing import AlertRouter, CameraPlace
from center_api.store.models import CameraRow
from contracts import CAMERAS_KEY, Camera, CameraConfigError, cameras_channel, channel_db, parse_cameras

log = logging.getLogger(__name__)

CAMERAS_FILE = "cameras.yaml"


class UnknownCell(Unprocessable):
    """A camera's fixed `cell_id` names no cell of the grid (422 `unknown_cell`)."""

    code = "unknown_cell"


@dataclass(frozen=True, slots=True)
class CameraRecord:
    camera: Camera
    cell_id: str
    cell_fixed: bool
    station_id: str
    updated_at: datetime


def _record(row: CameraRow) -> CameraRecord:
    return CameraRecord(
        Camera.model_validate(row.data), row.cell_id, row.cell_fixed, row.station_id, row.updated_at
    )


class CameraRegistry:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], router: AlertRouter, redis: Redis) -> None:
        self._sessions = sessions
        self._router = router
        self._redis = redis

    def _check_cell(self, camera: Camera) -> None:
        if camera.cell_id is not None and camera.cell_id not in self._router.locator.city.lineage:
            raise UnknownCell(f"camera {camera.id!r}: unknown cell {camera.cell_id!r}")

    def placement(self, camera: Camera) -> tuple[str, bool, str]:
        """(cell_id, fixed, station_id) of a camera; raises `UnknownCell` for a fixed cell not in the grid."""
        self._check_cell(camera)
        p = self._router.place_camera(CameraPlace.of(camera))
        return p.cell_id, camera.cell_id is not None, p.station_id

    async def import_config(self, config_dir: Path, cache_dir: Path | None = None) -> int:
        """Add the cameras of `cameras.yaml` that the registry does not have yet (the registry wins after).
        With `cache_dir`, an unchanged file is read from its parsed copy there (`read_yaml`: a restart)."""
        path = Path(config_dir) / CAMERAS_FILE
        if not path.exists():
            return 0
        data = await asyncio.to_thread(read_yaml, path, cache_dir)
        cameras = parse_cameras(data or {"cameras": []}, str(path))
        for cam in cameras:
            try:
                self._check_cell(cam)  # the cameras already registered are not placed again
            except UnknownCell as exc:
                raise CameraConfigError(f"{path}: {exc}") from None
        async with self._sessions() as session:
            have = set(await session.scalars(select(CameraRow.id)))
        new = [c for c in cameras if c.id not in have]
        if new:
            await self.save(new)
            log.info("imported %d cameras from %s", len(new), path)
        return len(new)

    async def load(self) -> int:
        """Load every camera's position into the router (and forget cameras the registry no longer has). The
        rows were validated when saved: their place is read from the stored JSON as it is (validating 8,502
        cameras again costs a restart 0.3 s)."""
        async with self._sessions() as session:
            rows = (await session.execute(select(CameraRow.id, CameraRow.data))).all()
        for gone in self._router.camera_ids() - {camera_id for camera_id, _ in rows}:
            self._router.set_camera(gone, None)
        for camera_id, data in rows:
            location = data.get("location") or {}
            place = CameraPlace(data.get("cell_id"), location.get("lat"), location.get("lon"))
            self._router.set_camera(camera_id, place)
        return len(rows)

    async def save(self, cameras: Sequence[Camera]) -> list[CameraRecord]:
        """Create or replace cameras (one transaction), then publish them."""
        now = datetime.now(UTC)
        records: list[CameraRecord] = []
        async with self._sessions() as session, session.begin():
            existing = {
                r.id: r
                for r in await session.scalars(
                    select(CameraRow).where(CameraRow.id.in_([c.id for c in cameras]))
                )
            }
            for cam in cameras:
                cell_id, fixed, station_id = self.placement(cam)
                data = cam.model_dump(mode="json")
                row = existing.get(cam.id)
                if row is None:
                    session.add(
                        CameraRow(
                            id=cam.id,
                            data=data,
                            cell_id=cell_id,
                            cell_fixed=fixed,
                            station_id=station_id,
                            updated_at=now,
                        )
                    )
                else:
                    row.data, row.cell_id, row.cell_fixed, row.station_id, row.updated_at = (
                        data,
                        cell_id,
                        fixed,
                        station_id,
                        now,
                    )
                records.append(CameraRecord(cam, cell_id, fixed, station_id, now))
        for cam in cameras:
            self._router.set_camera(cam.id, CameraPlace.of(cam))
        await self._publish(cameras, [])
        return records

    async def delete(self, camera_id: str) -> bool:
        async with self._sessions() as session, session.begin():
            # a DELETE's result is a CursorResult (rowcount); execute() is typed as the generic Result
            result = cast(
                CursorResult[Any], await session.execute(delete(CameraRow).where(CameraRow.id == camera_id))
            )
        if not result.rowcount:
            return False
        self._router.set_camera(camera_id, None)
        await self._publish([], [camera_id])
        return True

    async def get(self, camera_id: str) -> CameraRecord | None:
        async with self._sessions() as session:
            row = await session.get(CameraRow, camera_id)
        return _record(row) if row else None

    async def stream_url(self, camera_id: str) -> str | None:
        """The stream URL with the credentials joined in (a secret): for server-side openers only."""
        record = await self.get(camera_id)
        return record.camera.stream_url() if record else None

    async def list(
        self,
        *,
        station_id: str | None = None,
        cell_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[CameraRecord]:
        stmt = select(CameraRow)
        if station_id is not None:
            stmt = stmt.where(CameraRow.station_id == station_id)
        if cell_id is not None:
            stmt = stmt.where(CameraRow.cell_id == cell_id)
        if after is not None:
            stmt = stmt.where(CameraRow.id > after)
        stmt = stmt.order_by(CameraRow.id).limit(limit)
        async with self._sessions() as session:
            return [_record(r) for r in await session.scalars(stmt)]

    async def count(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(CameraRow)) or 0)

    async def publish_all(self) -> None:
        """Write the whole registry to the `gw:cameras` hash (workers read it at start)."""
        async with self._sessions() as session:
            rows = list(await session.scalars(select(CameraRow)))
        await self._publish([Camera.model_validate(r.data) for r in rows], [])

    async def _publish(self, changed: Sequence[Camera], removed: Sequence[str]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for start in range(0, len(changed), 1000):
                    chunk = changed[start : start + 1000]
                    pipe.hset(CAMERAS_KEY, mapping={c.id: c.model_dump_json() for c in chunk})
                if removed:
                    pipe.hdel(CAMERAS_KEY, *removed)
                for camera_id in [c.id for c in changed] + list(removed):
                    pipe.publish(cameras_channel(channel_db(self._redis)), camera_id)
                await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # The registry is committed; `publish_all` at the next start (or the next change) repairs Redis.
            log.warning("could not publish %d camera changes: %s", len(changed) + len(removed), exc)

    async def follow_changes(self) -> None:
        """Keep this replica's router current with changes made through other replicas. After a lost
        subscription the router is loaded again from the registry: changes announced meanwhile were missed."""
        lost = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(cameras_channel(channel_db(self._redis)))
                if lost:
                    log.info("camera change subscription back; reloaded %d cameras", await self.load())
                    lost = False
                async for message in pubsub.listen():
                    raw = message.get("data")
                    camera_id = raw.decode() if isinstance(raw, bytes) else str(raw)
                    record = await self.get(camera_id)
                    self._router.set_camera(camera_id, CameraPlace.of(record.camera) if record else None)
            except (RedisConnectionError, RedisTimeoutError, OSError, DBAPIError) as exc:
                # DBAPIError: the registry could not be read (a database outage); the next round reads again.
                log.warning("camera change subscription lost: %s", exc)
                lost = True
                await asyncio.sleep(2.0)
            finally:
                with contextlib.suppress(RedisConnectionError, OSError):
                    await pubsub.aclose()


__all__ = ["UNASSIGNED", "CameraRecord", "CameraRegistry", "UnknownCell"]
