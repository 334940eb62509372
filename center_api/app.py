"""The app factory. `create_app(settings)` builds the FastAPI app; its lifespan loads and validates the city,
migrates the schema, imports the camera registry, and runs the alert consumer, the feed listener, the
escalation loop and the snapshot retention sweep as background tasks, stopping them cleanly on shutdown.
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
from sqlalchemy.exc import OperationalError

from center_api.api import cameras, feed, grid, incidents, stats, system
from center_api.cameras.registry import CameraRegistry
from center_api.console import console_router
from center_api.consumer import AlertConsumer, ensure_group
from center_api.feeds import FeedHub
from center_api.grid import CellLocator, load_city
from center_api.live.access import center_live_router
from center_api.retention import SnapshotSweeper
from center_api.routing import AlertRouter
from center_api.settings import CenterSettings
from center_api.snapshots import SnapshotStore
from center_api.state import CenterState
from center_api.store.db import make_engine, migrate, session_factory
from center_api.store.incidents import IncidentWriter
from center_api.store.models import Incident
from center_api.store.queries import IncidentReader
from center_api.workflow import OPEN_STATUSES
from contracts.bus import ALERTS_STREAM, CENTER_GROUP

log = logging.getLogger(__name__)

API_DESCRIPTION = """GridWatch monitoring center: grid-routed incidents, workflow, live feeds, statistics
and the camera registry. Every endpoint but `/api/v1/health` needs a bearer token."""


async def _every(interval_s: float, name: str, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            await work()
        except (RedisConnectionError, RedisTimeoutError, OSError, OperationalError) as exc:
            log.warning("%s failed, will retry: %s", name, exc)
        await asyncio.sleep(interval_s)


async def _escalate(state: CenterState) -> None:
    assert state.writer is not None and state.hub is not None
    events = await state.writer.escalate_due(datetime.now(UTC), state.settings.ack_sla_s)
    if events:
        state.metrics.escalated.inc(len(events))
        log.info("escalated %d incidents", len(events))
        await state.hub.publish(events)


async def _gauges(state: CenterState) -> None:
    assert state.redis is not None and state.sessions is not None
    try:
        for group in await state.redis.xinfo_groups(ALERTS_STREAM):
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == CENTER_GROUP:
                state.metrics.pending.set(group.get("pending") or 0)
                state.metrics.consumer_lag.set(group.get("lag") or 0)
    except ResponseError:
        pass  # no stream yet
    async with state.sessions() as session:
        rows = (
            await session.execute(
                select(Incident.station_id, func.count())
                .where(Incident.status.in_([s.value for s in OPEN_STATUSES]))
                .group_by(Incident.station_id)
            )
        ).all()
    state.metrics.open_incidents.clear()
    for station_id, count in rows:
        state.metrics.open_incidents.labels(station_id).set(count)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s died", task.get_name(), exc_info=task.exception())


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: CenterState = app.state.center
    s = state.settings
    if state.city is None:  # create_app loaded it; reload only for an app started twice
        state.city = await asyncio.to_thread(load_city, s.config_dir)
    state.locator = CellLocator(state.city, s.locate_tolerance_m)
    state.router = AlertRouter(state.locator)
    state.snapshots = SnapshotStore(s.data_dir, s.snapshot_max_bytes)
    state.engine = make_engine(s.database_url)
    state.redis = Redis.from_url(
        s.redis_url, socket_timeout=30, socket_connect_timeout=10, health_check_interval=30
    )
    try:
        await migrate(state.engine)
        state.sessions = session_factory(state.engine)
        state.writer = IncidentWriter(state.sessions)
        state.reader = IncidentReader(state.sessions)
        registry = CameraRegistry(state.sessions, state.router, state.redis)
        state.cameras = registry
        if s.publish_cameras:
            await registry.import_config(s.config_dir)
        await registry.load()
        await ensure_group(state.redis)
        hub = state.hub = FeedHub(state.redis, state.metrics, s.feed_queue_size)
        await hub.start()
        consumer = AlertConsumer(
            state.redis,
            consumer=s.consumer_name,
            router=state.router,
            writer=state.writer,
            snapshots=state.snapshots,
            on_events=hub.publish,
            metrics=state.metrics,
            batch_size=s.batch_size,
            block_ms=s.block_ms,
            claim_idle_ms=s.claim_idle_ms,
            claim_every_s=s.claim_every_s,
        )
        state.tasks = [
            asyncio.create_task(consumer.run(), name="alert-consumer"),
            asyncio.create_task(
                _every(s.escalate_every_s, "escalation", lambda: _escalate(state)), name="escalation"
            ),
            asyncio.create_task(_every(15.0, "gauges", lambda: _gauges(state)), name="gauges"),
            asyncio.create_task(registry.follow_changes(), name="camera-changes"),
        ]
        if s.snapshot_retention_days > 0:
            sweeper = SnapshotSweeper(
                state.sessions, state.snapshots, state.metrics, s.snapshot_retention_days
            )
            sweep = _every(s.snapshot_sweep_every_s, "snapshot retention", lambda: sweeper.run(time.time()))
            state.tasks.append(asyncio.create_task(sweep, name="snapshot-retention"))
        for task in state.tasks:
            task.add_done_callback(_log_crash)
        state.ready = True
        log.info(
            "center up: %d cells, %d stations, consumer %s",
            len(state.city.lineage),
            len(state.city.stations),
            s.consumer_name,
        )
        yield
    finally:
        state.ready = False
        state.city = None
        for task in state.tasks:
            task.cancel()
        for task in state.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        state.tasks = []
        if state.hub is not None:
            await state.hub.stop()
        await state.redis.aclose()
        await state.engine.dispose()


def create_app(settings: CenterSettings) -> FastAPI:
    """Build the app; raises `GridConfigError` at once for an invalid grid or stations file."""
    app = FastAPI(title="GridWatch center", version="1", description=API_DESCRIPTION, lifespan=_lifespan)
    # Load and validate the city now: a bad config fails here (GridConfigError names file and feature).
    app.state.center = CenterState(settings=settings, city=load_city(settings.config_dir))
    app.include_router(system.router)
    app.include_router(system.metrics_router)
    app.include_router(incidents.router)
    app.include_router(feed.router)
    app.include_router(grid.router)
    app.include_router(stats.router)
    app.include_router(cameras.router)
    app.include_router(center_live_router())  # console engineer: live view
    app.include_router(console_router())  # console engineer: the page at /
    # The console and live-view routers (center_api/console, center_api/live) are included here:
    # they reuse center_api.auth (CurrentPrincipal, require_roles) and center_api.state (StateDep).
    return app
