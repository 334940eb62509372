"""Per-camera stream health, written by the worker that owns the camera (Redis, with a TTL)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class CameraState(StrEnum):
    starting = "starting"
    online = "online"
    degraded = "degraded"
    offline = "offline"


class StreamHealth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    camera_id: str
    state: CameraState
    reason: str | None = Field(
        default=None, description="Why the camera is not online (never has credentials)"
    )
    worker_id: str | None = None
    last_frame_at: datetime | None = None
    fps: float | None = Field(default=None, ge=0, description="Measured stream frame rate")
    keyframe_interval: float | None = Field(default=None, ge=0, description="Seconds between keyframes")
    bitrate_kbps: float | None = Field(default=None, ge=0)
    sample_fps: float | None = Field(default=None, ge=0, description="Samples handed to detection per second")
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    reconnects: int = 0
    dropped_samples: int = Field(
        default=0,
        ge=0,
        description="Samples the frame sink dropped (replaced by a newer one or gone stale), counted once",
    )
    last_error: str | None = None
    preroll_s: float | None = Field(
        default=None, ge=0, description="Seconds of compressed video the pre-roll ring holds now (None: off)"
    )
    ring_bytes: int | None = Field(default=None, ge=0, description="Bytes the camera's pre-roll ring holds")
    ring_limit_bytes: int | None = Field(default=None, ge=0, description="The camera's pre-roll ring bound")
    ring_note: str | None = Field(
        default=None,
        max_length=300,
        description="Why the ring keeps fewer seconds than configured (bitrate over the bound, budget)",
    )
    updated_at: datetime | None = None
