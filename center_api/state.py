"""The running center's shared objects, kept on `app.state.center`; routers get them through `StateDep`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from center_api.feeds import FeedHub
from center_api.grid import CellLocator, City
from center_api.metrics import CenterMetrics
from center_api.routing import AlertRouter
from center_api.settings import CenterSettings
from center_api.snapshots import SnapshotStore
from center_api.store.incidents import IncidentWriter
from center_api.store.queries import IncidentReader

if TYPE_CHECKING:
    from center_api.cameras.registry import CameraRegistry


@dataclass
class CenterState:
    settings: CenterSettings
    metrics: CenterMetrics = field(default_factory=CenterMetrics)
    city: City | None = None
    locator: CellLocator | None = None
    router: AlertRouter | None = None
    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    writer: IncidentWriter | None = None
    reader: IncidentReader | None = None
    redis: Redis | None = None
    hub: FeedHub | None = None
    snapshots: SnapshotStore | None = None
    cameras: CameraRegistry | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False


def get_state(conn: HTTPConnection) -> CenterState:
    return conn.app.state.center


StateDep = Annotated[CenterState, Depends(get_state)]
