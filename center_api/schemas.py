"""Request and response models of the incident API and the feeds (kept apart from the handlers)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from center_api.workflow import Status
from contracts import ClipState, DetectedObject, GeoPoint
from contracts.camera import CONTROL_RANGE


def _iso_only(value: Any) -> Any:
    # pydantic would take a bare number, or a string of one ("0.5", "1e9"), as Unix seconds: a time in a
    # request is ISO 8601 or nothing.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("give an ISO 8601 date-time, e.g. 2026-01-01T00:00:00Z")
    try:
        float(value)
    except ValueError:
        return value
    raise ValueError("give an ISO 8601 date-time, e.g. 2026-01-01T00:00:00Z, not a number")


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


RequestTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_as_utc)]
"""A date-time in a request (query or body): ISO 8601 only, a bare number refused (422); naive means UTC."""

Printable = Annotated[str, Field(pattern=f"^[^{CONTROL_RANGE}]*$")]
"""Text in a request that names something (an id, a kind): no control characters. A NUL byte in one would
reach PostgreSQL, which refuses it in text (a 500); it is refused as invalid (422) instead."""


class IncidentPublic(BaseModel):
    """An incident as the API and the feeds show it, read from the store's `Incident` by attribute
        (`IncidentPublic.model_validate(incident)`); the fields from `snapshot_url` on are the model's derived
    values (the clip's three as the reader or writer worked them out for the page)."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: int
    alert_id: str = Field(description="The first alert of the incident")
    kind: str
    severity: int
    status: Status
    camera_id: str
    site_id: str | None = None
    cell_id: str = Field(description="Grid cell, or 'unassigned' (routed to the city command center)")
    community_id: str | None
    street_id: str | None
    district_id: str | None
    station_id: str
    first_seen: datetime
    last_seen: datetime
    count: int = Field(description="Alerts folded into this incident")
    objects: list[DetectedObject] = Field(description="The objects behind the newest alert")
    rule: str | None
    zone: str | None
    detail: str | None
    created_at: datetime
    acknowledged_at: datetime | None = None
    dispatched_at: datetime | None = None
    resolved_at: datetime | None = None
    escalated_at: datetime | None = None
    snapshot_url: str | None = Field(description="The latest snapshot (JPEG), if the alerts carried one")
    location: GeoPoint | None = Field(default=None, description="Where the camera stands, if known")
    escalated: bool = Field(default=False, description="Not acknowledged in time: escalated (once)")
    open: bool = Field(description="Not closed yet (new, acknowledged or dispatched)")
    allowed_transitions: list[Status] = Field(
        description="The statuses the workflow lets it move to now (`POST .../transitions`); none once closed"
    )
    clip_state: ClipState | None = Field(
        default=None,
        description="pending: a clip is coming; present: at least one is stored (`clips_url`); unavailable: "
        "none will come (`clip_reason`); null: none was ever expected",
    )
    clip_reason: str | None = Field(
        default=None, description="Why no clip is available, or why the one present is short"
    )
    clips_url: str | None = Field(
        default=None,
        description="Where the incident's clips are listed (`GET .../clips`), once one is expected",
    )


class IncidentPage(BaseModel):
    items: list[IncidentPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class EventPublic(BaseModel):
    """One entry of an incident's history, read from the store's `IncidentEvent` by attribute."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    event: str = Field(
        description="created | updated | escalated | transition | clip_added | clip_unavailable | "
        "clip_requested"
    )
    actor: str | None
    from_status: str | None
    to_status: str | None
    note: str | None


class IncidentDetail(IncidentPublic):
    history: list[EventPublic]
    time_to_acknowledge_s: float | None = None
    time_to_resolve_s: float | None = None


class IncidentQuery(BaseModel):
    """The filters of `GET /api/v1/incidents` (its query parameters); the store reads them as they are."""

    model_config = ConfigDict(frozen=True)  # not `forbid`: `cursor`, `limit` and `token` share the query

    cell: Printable | None = Field(default=None, max_length=64, description="Grid cell id")
    community: Printable | None = Field(default=None, max_length=64, description="Community id")
    street: Printable | None = Field(default=None, max_length=64, description="Street/township id")
    district: Printable | None = Field(default=None, max_length=64, description="District/county id")
    station: Printable | None = Field(default=None, max_length=64, description="Police station id")
    camera: Printable | None = Field(default=None, max_length=128, description="Camera id")
    kind: Printable | None = Field(default=None, max_length=32, description="Alert kind, e.g. intrusion")
    severity: int | None = Field(default=None, ge=1, le=4, description="1 (highest) .. 4")
    status: Status | None = Field(default=None, description="Workflow status")
    since: RequestTime | None = Field(
        default=None, description="Incidents still active at or after this time (last_seen >= since)"
    )
    until: RequestTime | None = Field(
        default=None, description="Incidents that began before this time (first_seen < until)"
    )


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Status = Field(description="Target status")
    # Free text: any character but NUL, which PostgreSQL refuses in text.
    note: str = Field(
        default="", max_length=2000, pattern=r"^[^\x00]*$", description="Why; kept in the audit trail"
    )


class FeedEventType(StrEnum):
    """What happened to the incident a feed message carries (the `event` of its store event)."""

    created = "created"
    updated = "updated"
    escalated = "escalated"
    transition = "transition"
    clip_added = "clip_added"  # a clip of the incident arrived
    clip_unavailable = "clip_unavailable"  # a worker said its clip will not come (or the station's quota)
    clip_requested = "clip_requested"  # an operator asked for the last seconds of a camera


class FeedMessage(BaseModel):
    """Every message of the live feeds (WebSocket text frame, SSE `data:`), and what replicas relay."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["incident"] = "incident"
    event: FeedEventType
    event_id: int = Field(ge=1, description="Store event id: SSE `id:`; resume after it with `after`")
    incident: IncidentPublic


class StationPublic(BaseModel):
    id: str
    name: str
    code: str | None = None
    city_command: bool = False


class MePublic(BaseModel):
    subject: str
    role: str
    station_id: str | None
    station_name: str | None
    city_command_id: str
