"""Request and response models of the clip routes (`center_api.api.clips`, `center_api.api.clip_requests`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ClipStored(BaseModel):
    """The answer to an upload: the clip and the incidents it is linked to so far (an alert not stored yet
    links its incident when it lands)."""

    id: str = Field(description="The clip's id: its SHA-256")
    incidents: list[int] = Field(description="Incidents the clip is linked to so far")


class ClipFailureRecorded(BaseModel):
    alert_ids: int = Field(description="Alerts (or request ids) now noted as without a clip")
    incidents: list[int] = Field(description="Their incidents, as far as they are stored")


class ClipPublic(BaseModel):
    """One clip of an incident, as `GET /api/v1/incidents/{id}/clips` lists it."""

    id: str = Field(description="The clip's SHA-256; its path segment")
    camera_id: str
    started_at: datetime = Field(description="Wall-clock time (UTC) of the first frame")
    duration_s: float
    alert_offsets_s: list[float] = Field(
        description="Where this incident's alerts fired, seconds from the clip's start (for the timeline)"
    )
    bytes: int
    codec: str = Field(description="h264 | hevc")
    width: int | None
    height: int | None
    short_reason: str | None = Field(description="Why the clip is shorter than asked, if it is")
    url: str = Field(
        description="Signed URL of the MP4 for a <video> element (no token needed; expires after "
        "clip_link_ttl_s, then list again)"
    )
    download_url: str = Field(description="The same, served as an attachment")
    expires_at: datetime = Field(description="When url and download_url stop working")


class ClipRequestIn(BaseModel):
    """An operator's "save the last N seconds" of a camera."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(
        ge=1, le=600, description="Seconds to save, up to the workers' pre-roll (clip_preroll_s; 422 beyond)"
    )
    # No upper bound in the schema (a JSON number that large is not exact for every client); an id past the
    # 64-bit ids the store has is no incident (404).
    incident_id: int | None = Field(
        default=None,
        ge=1,
        description="An incident to add the clip to; none: a new incident of kind operator_clip",
    )
    note: str | None = Field(
        default=None, max_length=2000, pattern=r"^[^\x00]*$", description="Why; kept in the audit trail"
    )


class ClipRequestAccepted(BaseModel):
    request_id: str = Field(description="The id the clip will carry (its alert id); sent to the worker")
    incident_id: int = Field(description="The incident the clip will join")
