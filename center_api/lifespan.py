"""The center's lifespan: build `CenterServices`, run the background tasks, and take it all down again.

Start-up loads the city (unless `create_app` already did), migrates the schema, imports and loads the camera
registry, creates the consumer group and starts the feed hub; only then are the services published on
`app.state.services` and the background tasks started: the alert consumer, the escalation loop, the
gauges (clip bytes and quotas by station among them), the camera-change follower, the clip sweep
(retention, stale uploads) and, when retention is on, the snapshot sweep. A failure anywhere
before that leaves no services behind and the app does not start. Shutdown cancels the tasks, stops the
hub and closes Redis and the engine. `app.state.ready` says whether the center is up (the health route).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from center_api.cameras.registry import CameraRegistry
from center_api.clips.files import ClipStore
from center_api.clips.intake import ClipIntake
from center_api.clips.requests import ClipRequester
from center_api.consumer import AlertConsumer, ConsumerTuning, ensure_group
from center_api.feeds import FeedHub
from center_api.grid import CellLocator, City, load_city
from center_api.metrics import CenterMetrics
from center_api.retention import ClipSweeper, SnapshotSweeper
from center_api.routing import AlertRouter
from center_api.services import CenterServices
from center_api.settings import CenterSettings
from center_api.snapshots import SnapshotStore
from center_api.store.db import make_engine, migrate, session_factory
from center_api.store.incidents import IncidentWriter
from center_api.store.models import Incident
from center_api.store.queries import IncidentReader
from center_api.workflow import OPEN_STATUSES
from contracts.bus import ALERTS_STREAM, CENTER_GROUP

log = logging.getLogger(__name__)


async def _every(interval_s: float, name: str, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            await work()
        except (RedisConnectionError, RedisTimeoutError, OSError, DBAPIError) as exc:  # an outage: retry
            log.warning("%s failed, will retry: %s", name, exc)
        await asyncio.sleep(interval_s)


async def _escalate(services: CenterServices) -> None:
    events = await services.writer.escalate_due(datetime.now(UTC), services.settings.ack_sla_s)
    if events:
        services.metrics.escalated.inc(len(events))
        log.info("escalated %d incidents", len(events))
        await services.hub.publish(events)


async def _gauges(services: CenterServices) -> None:
    metrics = services.metrics
    try:
        for group in await services.redis.xinfo_groups(ALERTS_STREAM):
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == CENTER_GROUP:
                metrics.pending.set(group.get("pending") or 0)
                metrics.consumer_lag.set(group.get("lag") or 0)
    except ResponseError:
        pass  # no stream yet
    async with services.sessions() as session:
        rows = (
            await session.execute(
                select(Incident.station_id, func.count())
                .where(Incident.status.in_([s.value for s in OPEN_STATUSES]))
                .group_by(Incident.station_id)
            )
        ).all()
    metrics.open_incidents.clear()
    for station_id, count in rows:
        metrics.open_incidents.labels(station_id).set(count)
    await services.clips.refresh_gauges(sorted(services.city.stations))


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s died", task.get_name(), exc_info=task.exception())


def _background(services: CenterServices) -> list[asyncio.Task[None]]:
    """Start the center's background tasks; each logs its crash (the others keep running)."""
    s = services.settings
    consumer = AlertConsumer(
        services.redis,
        consumer=s.consumer_name,
        router=services.router,
        writer=services.writer,
        snapshots=services.snapshots,
        on_events=services.hub.publish,
        metrics=services.metrics,
        tuning=ConsumerTuning(
            s.batch_size, s.block_ms, s.claim_idle_ms, s.claim_every_s, s.reap_idle_ms, s.stream_keep_acked_s
        ),
    )
    tasks = [
        asyncio.create_task(consumer.run(), name="alert-consumer"),
        asyncio.create_task(
            _every(s.escalate_every_s, "escalation", lambda: _escalate(services)), name="escalation"
        ),
        asyncio.create_task(_every(15.0, "gauges", lambda: _gauges(services)), name="gauges"),
        asyncio.create_task(services.cameras.follow_changes(), name="camera-changes"),
    ]
    clip_sweeper = ClipSweeper(
        services.sessions, services.clips.store, services.metrics, s.clip_retention_days
    )
    clip_sweep = _every(s.clip_sweep_every_s, "clip retention", lambda: clip_sweeper.run(time.time()))
    tasks.append(asyncio.create_task(clip_sweep, name="clip-retention"))
    if s.snapshot_retention_days > 0:
        sweeper = SnapshotSweeper(
            services.sessions, services.snapshots, services.metrics, s.snapshot_retention_days
        )
        sweep = _every(s.snapshot_sweep_every_s, "snapshot retention", lambda: sweeper.run(time.time()))
        tasks.append(asyncio.create_task(sweep, name="snapshot-retention"))
    for task in tasks:
        task.add_done_callback(_log_crash)
    return tasks


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def center_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The lifespan `create_app` gives the app; reads `app.state.settings`, `.metrics` and `.city`."""
    s: CenterSettings = app.state.settings
    metrics: CenterMetrics = app.state.metrics
    # create_app loaded the city; an app started a second time loads it afresh.
    city: City = app.state.city or await asyncio.to_thread(load_city, s.config_dir)
    app.state.city = None
    locator = CellLocator(city, s.locate_tolerance_m)
    router = AlertRouter(locator)
    engine = make_engine(s.database_url)
    redis = Redis.from_url(
        s.redis_url, socket_timeout=30, socket_connect_timeout=10, health_check_interval=30
    )
    hub = FeedHub(redis, metrics, s.feed_queue_size)
    tasks: list[asyncio.Task[None]] = []
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        cameras = CameraRegistry(sessions, router, redis)
        if s.publish_cameras:
            await cameras.import_config(s.config_dir, s.data_dir / "cache")
        await cameras.load()
        await ensure_group(redis)
        await hub.start()
        writer = IncidentWriter(sessions, s.clip_pending_timeout_s)
        services = CenterServices(
            settings=s,
            metrics=metrics,
            city=city,
            locator=locator,
            router=router,
            engine=engine,
            sessions=sessions,
            writer=writer,
            reader=IncidentReader(sessions, s.clip_pending_timeout_s),
            redis=redis,
            hub=hub,
            snapshots=SnapshotStore(s.data_dir, s.snapshot_max_bytes),
            cameras=cameras,
            clips=ClipIntake(
                store=ClipStore(s.data_dir),
                sessions=sessions,
                writer=writer,
                cameras=cameras,
                metrics=metrics,
                max_bytes=s.clip_max_bytes,
                quota_bytes=s.clip_station_quota_bytes,
            ),
            clip_requests=ClipRequester(redis, sessions, writer, router),
        )
        app.state.services = services
        tasks = _background(services)
        app.state.ready = True
        log.info(
            "center up: %d cells, %d stations, consumer %s",
            len(city.lineage),
            len(city.stations),
            s.consumer_name,
        )
        yield
    finally:
        app.state.ready = False
        await _stop(tasks)
        app.state.services = None
        await hub.stop()
        await redis.aclose()
        await engine.dispose()
