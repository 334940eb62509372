"""`CenterServices`: the running center's shared objects, built once by the lifespan, all present.

The app keeps it on `app.state.services` from start-up to shutdown (None before and after); routers get
it through `center_api.api.deps.ServicesDep`, which answers 503 while there is none. It is frozen: what
changes while the center runs (the background tasks, the ready flag) lives in the lifespan, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from center_api.cameras.registry import CameraRegistry
from center_api.clips.intake import ClipIntake
from center_api.clips.requests import ClipRequester
from center_api.feeds import FeedHub
from center_api.grid import CellLocator, City
from center_api.metrics import CenterMetrics
from center_api.routing import AlertRouter
from center_api.settings import CenterSettings
from center_api.snapshots import SnapshotStore
from center_api.store.incidents import IncidentWriter
from center_api.store.queries import IncidentReader


@dataclass(frozen=True, slots=True)
class CenterServices:
    """Everything a request handler or background task of the center may use; no field is optional."""

    settings: CenterSettings
    metrics: CenterMetrics
    city: City
    locator: CellLocator
    router: AlertRouter
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    writer: IncidentWriter
    reader: IncidentReader
    redis: Redis
    hub: FeedHub
    snapshots: SnapshotStore
    cameras: CameraRegistry
    clips: ClipIntake  # its `store` holds the files
    clip_requests: ClipRequester
