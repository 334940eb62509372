"""Event clips: what crosses package and host lines about them.

A worker keeps a bounded ring of compressed packets per camera, remuxes pre-roll + post-roll into an MP4 when
a rule fires (no decode, no encode), and uploads it to the center, never through the alert stream:

- the alert says whether a clip will follow (`Alert.clip`: `ClipNote`, pending or unavailable with a reason);
- the worker uploads the file with `PUT /api/v1/clips/{sha256}` (role `worker`), its `ClipMeta` as the
  `meta` query parameter (JSON); the same digest uploaded twice is one clip (content-addressed, idempotent);
- a clip the worker promised but cannot make is reported with `POST /api/v1/clips/failures` (`ClipFailure`);
- an operator's "save the last N seconds" (`POST /api/v1/cameras/{id}/clips`) reaches the worker that owns
  the camera as a `ClipRequest` on the Redis stream `gw:clip-requests`; the clip it makes carries the
  request's id in `alert_ids`.

The center links a clip to an incident through the alert ids it carries (an incident's alerts, or its
on-demand requests): a clip that arrives before its alert is linked when the alert lands.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CLIP_REQUESTS_STREAM = "gw:clip-requests"
CLIP_REQUESTS_MAXLEN = 10_000
CLIP_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Offline/online are stream-health alerts: there is no picture to show, so they get no clip.
NO_CLIP_KINDS = frozenset({"camera_offline", "camera_online", "operator_clip"})  # the last: made by request
MAX_CLIP_ALERTS = 256


class ClipState(StrEnum):
    pending = "pending"  # the worker is recording or uploading it
    present = "present"  # at the center (at least one clip)
    unavailable = "unavailable"  # none will come; `reason` says why


class ClipNote(BaseModel):
    """What the alert says about its clip at the moment it is emitted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: ClipState = Field(description="pending: a clip follows; unavailable: none will (see reason)")
    reason: str | None = Field(default=None, max_length=300, description="Why no clip, or why a short one")
    preroll_s: float | None = Field(default=None, ge=0, description="Seconds of video before the alert")

    @model_validator(mode="after")
    def _no_present(self) -> ClipNote:
        if self.state is ClipState.present:
            raise ValueError("an alert's clip is pending or unavailable; the center decides present")
        return self


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return value.astimezone(UTC)


class ClipMeta(BaseModel):
    """Everything the center needs to file an uploaded clip; the body is the MP4 itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    camera_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    alert_ids: tuple[str, ...] = Field(
        min_length=1,
        max_length=MAX_CLIP_ALERTS,
        description="Alerts (or on-demand request ids) the clip shows; the center links it through them",
    )
    alert_offsets_s: tuple[float, ...] = Field(
        description="Where each alert fired, seconds from the clip's start (same order as alert_ids)"
    )
    started_at: datetime = Field(description="Wall-clock time (UTC) of the clip's first frame")
    duration_s: float = Field(gt=0, le=3600)
    bytes: int = Field(gt=0, description="Size of the MP4")
    codec: str = Field(max_length=32, description="h264 | hevc")
    width: int | None = Field(default=None, ge=1, le=16384)
    height: int | None = Field(default=None, ge=1, le=16384)
    worker_id: str | None = Field(default=None, max_length=128)
    short_reason: str | None = Field(
        default=None, max_length=300, description="Why the clip is shorter than asked (ring bound, reconnect)"
    )

    @field_validator("alert_ids")
    @classmethod
    def _ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for alert_id in value:
            if not 1 <= len(alert_id) <= 64 or not alert_id.isascii() or not alert_id.isprintable():
                raise ValueError("alert ids are 1-64 printable ASCII characters")
        return value

    @field_validator("started_at")
    @classmethod
    def _started_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @model_validator(mode="after")
    def _offsets(self) -> ClipMeta:
        if len(self.alert_offsets_s) != len(self.alert_ids):
            raise ValueError("alert_offsets_s must have one offset per alert id")
        if any(not 0 <= o <= self.duration_s + 1 for o in self.alert_offsets_s):
            raise ValueError("alert offsets must lie within the clip")
        return self


class ClipFailure(BaseModel):
    """A clip the worker promised (`ClipNote` pending) and cannot deliver."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    camera_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    alert_ids: tuple[str, ...] = Field(min_length=1, max_length=MAX_CLIP_ALERTS)
    reason: str = Field(min_length=1, max_length=300)
    worker_id: str | None = Field(default=None, max_length=128)


class ClipRequest(BaseModel):
    """An operator's "save the last N seconds", from the center to the worker that owns the camera."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(min_length=1, max_length=64, description="Becomes the clip's alert id")
    camera_id: str = Field(min_length=1, max_length=128)
    seconds: float = Field(gt=0, le=600)
    requested_at: datetime
    requested_by: str | None = Field(default=None, max_length=128)

    @field_validator("requested_at")
    @classmethod
    def _requested_utc(cls, value: datetime) -> datetime:
        return _utc(value)


def encode_clip_request(request: ClipRequest) -> dict[str, bytes]:
    return {"request": request.model_dump_json().encode()}


def decode_clip_request(fields: dict[bytes, bytes] | dict[str, bytes]) -> ClipRequest:
    """Inverse of `encode_clip_request`; raises ValueError for an entry that is not one."""
    raw = fields.get(b"request") if b"request" in fields else fields.get("request")  # type: ignore[call-overload]
    if raw is None:
        raise ValueError("clip request entry without a 'request' field")
    return ClipRequest.model_validate_json(raw)
