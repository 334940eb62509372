"""Camera API models: the stream URL goes in on create/update and only ever comes out redacted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts import GeoPoint, SiteType, StreamHealth


class CameraPublic(BaseModel):
    id: str
    name: str
    url: str = Field(description="Redacted stream URL (credentials replaced by ***)")
    site_type: SiteType
    site_id: str | None
    location: GeoPoint | None
    cell_id: str = Field(description="Cell the camera is in ('unassigned' outside the grid)")
    cell_fixed: bool = Field(description="True when the cell was set by hand rather than located")
    station_id: str
    sample_fps: float
    rules: list[dict[str, Any]]
    enabled: bool
    updated_at: datetime
    health: StreamHealth | None = Field(
        default=None, description="From the worker that owns it (gw:health:*)"
    )


class CameraPage(BaseModel):
    items: list[CameraPublic]
    next_cursor: str | None


class RowError(BaseModel):
    row: int = Field(description="1-based row (CSV, after the header) or feature index (GeoJSON)")
    id: str | None
    error: str


class ImportReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool
    total: int
    valid: int
    created: int = 0
    updated: int = 0
    errors: list[RowError]
    cells: dict[str, int] = Field(default_factory=dict, description="Valid cameras per assigned cell")
