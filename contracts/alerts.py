"""The `Alert`: what a worker says happened, as it travels on the bus `gw:alerts`.

The producer sets `id` once (a UUIDv7: time-ordered, unique without coordination); every consumer is
idempotent on it. The center fills the grid fields (`cell_id` ... `station_id`) when it stores an incident.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.clips import ClipNote

ALERT_SCHEMA_VERSION = 1


class AlertKind(StrEnum):
    intrusion = "intrusion"
    loitering = "loitering"
    crowd = "crowd"
    line_crossing = "line_crossing"
    vehicle_restricted = "vehicle_restricted"
    tamper = "tamper"
    camera_offline = "camera_offline"
    camera_online = "camera_online"
    operator_clip = "operator_clip"  # an operator saved the last seconds of a camera (no rule fired)


class GeoPoint(BaseModel):
    """WGS-84 position."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Strict: a JSON number (an integer too), never a string or a boolean of one.
    lat: float = Field(ge=-90, le=90, strict=True, description="Latitude, degrees")
    lon: float = Field(ge=-180, le=180, strict=True, description="Longitude, degrees")


class DetectedObject(BaseModel):
    """One object behind an alert. `box` is (x1, y1, x2, y2) in normalized image coordinates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cls: str = Field(description="Class name, e.g. 'person'")
    confidence: float = Field(ge=0, le=1)
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2, normalized 0..1")
    track_id: int | None = Field(default=None, description="Tracker id, stable across samples")


def new_alert_id() -> str:
    """A UUIDv7 (RFC 9562): 48-bit millisecond time, then random bits; sorts by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


class Alert(BaseModel):
    """Versioned, frozen wire model. `Alert.model_validate_json(a.model_dump_json()) == a`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = Field(default=ALERT_SCHEMA_VERSION, description="Schema version")
    id: str = Field(default_factory=new_alert_id, min_length=1, max_length=64)
    kind: AlertKind
    severity: int = Field(ge=1, le=4, description="1 highest .. 4 lowest (GB/T 28181 alarm priority)")
    camera_id: str = Field(min_length=1, max_length=128)
    site_id: str | None = Field(default=None, max_length=128)
    captured_at: datetime = Field(description="Frame time, UTC")
    emitted_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    location: GeoPoint | None = None
    zone: str | None = Field(default=None, description="Zone or line id the rule watched")
    objects: tuple[DetectedObject, ...] = ()
    rule: str | None = Field(default=None, description="Rule id that fired")
    worker_id: str | None = None
    model: str | None = Field(default=None, description="Detector model that saw it")
    detail: str | None = Field(default=None, max_length=2000, description="Human-readable reason")
    clip: ClipNote | None = Field(
        default=None, description="Whether the worker records a clip of it (None: no clip recorder)"
    )
    # Filled by the center when it routes the alert.
    cell_id: str | None = None
    community_id: str | None = None
    street_id: str | None = None
    district_id: str | None = None
    station_id: str | None = None

    @field_validator("captured_at", "emitted_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware (UTC)")
        return value.astimezone(UTC)
