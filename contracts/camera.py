"""The `Camera` contract: one stream source and what to watch on it.

The stream URL is a secret (it may carry a user and password): it is a `SecretStr`, and everything that
shows a camera shows `redact_url(url)` (from `contracts.streams`, with the rest of the redaction).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

from contracts.alerts import GeoPoint
from contracts.rules import RuleConfig
from contracts.streams import redact_url


class SiteType(StrEnum):
    key_unit = "key_unit"
    key_area = "key_area"
    key_site = "key_site"


class Camera(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = Field(default="", max_length=200)
    url: SecretStr = Field(description="Stream URL (rtsp://, http://, file path); a secret")
    site_type: SiteType = SiteType.key_site
    site_id: str | None = Field(default=None, max_length=128)
    location: GeoPoint | None = None
    cell_id: str | None = Field(
        default=None, description="Fixed grid cell; by default located from `location`"
    )
    sample_fps: float = Field(default=1.0, gt=0, le=30, description="Frames per second handed to detection")
    rules: tuple[RuleConfig, ...] = Field(default=(), description="Event rules run on this camera")
    enabled: bool = True

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url.get_secret_value())

    @field_serializer("url", when_used="json")
    def _dump_url(self, url: SecretStr) -> str:
        # JSON dumps go to the bus and the registry, which need the real URL; APIs use CameraPublic models.
        return url.get_secret_value()


class CameraConfigError(ValueError):
    """A camera list that does not validate; the message names the file and the camera."""


def parse_cameras(data: object, source: str) -> list[Camera]:
    """Validate a parsed camera file (`{"cameras": [...]}` or a bare list) into `Camera`s.

    Raises `CameraConfigError` naming `source` and the offending entry (by id or index); ids must be unique.
    """
    from pydantic import ValidationError

    items = data.get("cameras") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise CameraConfigError(f"{source}: expected a list of cameras under 'cameras'")
    cameras: list[Camera] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        label = f"camera #{index}"
        if isinstance(item, dict) and item.get("id"):
            label = f"camera {item['id']!r}"
        try:
            camera = Camera.model_validate(item)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
            )
            raise CameraConfigError(f"{source}: {label}: {problems}") from None
        if camera.id in seen:
            raise CameraConfigError(f"{source}: {label}: duplicate camera id")
        seen.add(camera.id)
        cameras.append(camera)
    return cameras
