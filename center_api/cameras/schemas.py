"""Camera API models: a camera's URL comes out without credentials, its credentials as what is set."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from contracts import Camera, GeoPoint, SiteType, StreamHealth


class CredentialsPublic(BaseModel):
    """Which credentials a camera has, never their values."""

    username: bool = Field(description="A user name is set")
    password: bool = Field(description="A password is set")
    params: list[str] = Field(description="Names of the secret URL parameters that are set")


class CameraPublic(BaseModel):
    id: str
    name: str
    url: str = Field(
        description="Stream URL without credentials (a secret parameter keeps its place with an empty value)"
    )
    credentials: CredentialsPublic | None = Field(
        description="Which credentials are set (kept apart from the URL); null: none"
    )
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
    row: int = Field(
        description="CSV: the line number in the file where the record starts (the header is line 1; blank "
        "lines and lines inside quoted fields count); GeoJSON: the 1-based index of the feature"
    )
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


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # the patch's None means "not given", never a value to send


def _patch_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, info in Camera.model_fields.items():
        annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[name] = (
            annotation,
            Field(default=None, description=info.description, json_schema_extra=_without_default),
        )
    return fields


# The body of `PATCH /api/v1/cameras/{camera_id}`: any of a camera's fields, each with the type and bounds
# of `Camera`'s (derived from it, so the two never drift), nothing else (422); an `id` must be the path's. The
# route merges what was given (`model_dump(exclude_unset=True)`) into the stored camera and validates it all.
CameraPatch: type[BaseModel] = create_model(
    "CameraPatch",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Fields of a camera to change; those not given keep their value.",
    **_patch_fields(),
)
