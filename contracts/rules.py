"""Rule configurations carried by the `Camera` contract. Geometry is in normalized image coordinates.

`RuleConfig` is a discriminated union on `kind`:

    intrusion          an object of the watched classes inside a zone polygon for `min_samples` samples
    vehicle_restricted the same, for vehicle classes (its own alert kind)
    loitering          one track inside a zone for at least `dwell_s` seconds
    crowd              at least `min_count` objects inside a zone for at least `min_duration_s` seconds
    line_crossing      a track crossing a line in a direction (`a_to_b`, `b_to_a`, `both`)
    tamper             the picture against a learned reference: blackout, covered lens, blur, moved camera
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

# JSON numbers only: pydantic would read a string ("1.5") or a boolean (false) as a number, which a rule's
# JSON Schema refuses. An integer is a valid Number.
Number = Annotated[float, Strict()]
Integer = Annotated[int, Strict()]
Point = tuple[Number, Number]

VEHICLE_CLASSES = ("car", "truck", "bus", "motorcycle")
MAX_POLYGON_POINTS = 1000  # a zone is tested against every detection of every sampled frame
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _check_point(x: float, y: float) -> None:
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ValueError(f"point ({x}, {y}) is outside the image; use normalized 0..1 coordinates")


def _check_polygon(points: tuple[Point, ...]) -> tuple[Point, ...]:
    if len(points) < 3:
        raise ValueError("a zone polygon needs at least 3 points")
    if len(points) > MAX_POLYGON_POINTS:
        raise ValueError(f"a zone polygon has at most {MAX_POLYGON_POINTS} points")
    for x, y in points:
        _check_point(x, y)
    return points


class TimeWindow(BaseModel):
    """A daily window in the camera's local time; `start > end` spans midnight (22:00-06:00)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: str = Field(description="HH:MM, inclusive")
    end: str = Field(description="HH:MM, exclusive")
    days: tuple[Integer, ...] = Field(
        default=(0, 1, 2, 3, 4, 5, 6), description="Weekdays the window starts on, 0=Monday .. 6=Sunday"
    )

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not HH:MM")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(d < 0 or d > 6 for d in value):
            raise ValueError("days must be weekday numbers 0..6")
        return value


class _RuleBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64, description="Rule id, unique per camera")
    severity: Integer = Field(default=2, ge=1, le=4, description="1 highest .. 4 lowest")
    classes: tuple[str, ...] = Field(default=("person",), description="Object classes the rule watches")
    min_confidence: Number = Field(default=0.35, ge=0, le=1)
    min_area: Number = Field(default=0.0, ge=0, le=1, description="Smallest box area, fraction of the image")
    max_area: Number = Field(default=1.0, gt=0, le=1, description="Largest box area, fraction of the image")
    cooldown_s: Number = Field(default=60.0, ge=0, description="Quiet time before the same rule fires again")
    windows: tuple[TimeWindow, ...] = Field(default=(), description="Active time windows; empty = always")
    utc_offset_minutes: Integer = Field(
        default=0, ge=-14 * 60, le=14 * 60, description="Camera local time minus UTC, for `windows`"
    )

    @model_validator(mode="after")
    def _area_order(self) -> _RuleBase:
        if self.min_area > self.max_area:
            raise ValueError("min_area must not exceed max_area")
        return self


class _ZoneRule(_RuleBase):
    zone: str = Field(default="zone", min_length=1, max_length=64, description="Zone id")
    polygon: tuple[Point, ...] = Field(description="Zone polygon, normalized (x, y) points")

    @field_validator("polygon")
    @classmethod
    def _polygon_ok(cls, value: tuple[Point, ...]) -> tuple[Point, ...]:
        return _check_polygon(value)


class IntrusionRuleConfig(_ZoneRule):
    kind: Literal["intrusion"] = "intrusion"
    min_samples: Integer = Field(
        default=1, ge=1, le=100, description="Consecutive samples inside before firing"
    )


class VehicleZoneRuleConfig(_ZoneRule):
    kind: Literal["vehicle_restricted"] = "vehicle_restricted"
    classes: tuple[str, ...] = Field(default=VEHICLE_CLASSES, description="Vehicle classes not allowed")
    min_samples: Integer = Field(
        default=2, ge=1, le=100, description="Consecutive samples inside before firing"
    )


class LoiteringRuleConfig(_ZoneRule):
    kind: Literal["loitering"] = "loitering"
    severity: Integer = Field(default=3, ge=1, le=4, description="1 highest .. 4 lowest")
    dwell_s: Number = Field(default=60.0, gt=0, le=86_400, description="Seconds one track stays in the zone")
    max_gap_s: Number = Field(
        default=5.0,
        ge=0,
        le=600,
        description="A track unseen this long has left (detector misses are shorter)",
    )


class CrowdRuleConfig(_ZoneRule):
    kind: Literal["crowd"] = "crowd"
    min_count: Integer = Field(default=5, ge=2, le=1000, description="People in the zone at once")
    min_duration_s: Number = Field(default=10.0, ge=0, le=86_400, description="Seconds the count must hold")
    clear_s: Number = Field(
        default=10.0, ge=0, le=3600, description="Seconds below `min_count` before the episode ends"
    )


class LineCrossingRuleConfig(_RuleBase):
    kind: Literal["line_crossing"] = "line_crossing"
    severity: Integer = Field(default=3, ge=1, le=4, description="1 highest .. 4 lowest")
    line: str = Field(default="line", min_length=1, max_length=64, description="Line id")
    a: Point = Field(description="First end of the line, normalized (x, y)")
    b: Point = Field(description="Second end of the line, normalized (x, y)")
    direction: Literal["a_to_b", "b_to_a", "both"] = Field(
        default="both",
        description="Side A is where cross(b - a, p - a) > 0: for a line drawn left to right, the side below "
        "it (image y grows downward). `a_to_b` fires when an object moves from side A to side B",
    )
    cooldown_s: Number = Field(default=5.0, ge=0, description="Quiet time per track before it counts again")

    @field_validator("a", "b")
    @classmethod
    def _point_ok(cls, value: Point) -> Point:
        _check_point(*value)
        return value

    @model_validator(mode="after")
    def _not_degenerate(self) -> LineCrossingRuleConfig:
        if self.a == self.b:
            raise ValueError("a line needs two distinct points")
        return self


class TamperRuleConfig(BaseModel):
    """Camera tampering from image statistics against a reference learned over `learn_s` seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["tamper"] = "tamper"
    id: str = Field(min_length=1, max_length=64, description="Rule id, unique per camera")
    severity: Integer = Field(default=2, ge=1, le=4, description="1 highest .. 4 lowest")
    learn_s: Number = Field(default=10.0, ge=0, le=3600, description="Seconds of normal view to learn from")
    min_samples: Integer = Field(
        default=3, ge=1, le=100, description="Consecutive bad samples to raise an episode"
    )
    clear_samples: Integer = Field(
        default=3, ge=1, le=100, description="Consecutive good samples to clear it"
    )
    dark_level: Number = Field(default=20.0, ge=0, le=255, description="Mean grey below this is a blackout")
    flat_std: Number = Field(
        default=12.0, ge=0, le=128, description="Grey std-dev below this is a covered lens"
    )
    blur_ratio: Number = Field(
        default=0.35, gt=0, lt=1, description="Sharpness below this fraction of the reference is defocus"
    )
    scene_change: Number = Field(
        default=0.35,
        gt=0,
        lt=1,
        description="Edge-map correlation with the reference below this is a moved camera",
    )


RuleConfig = Annotated[
    IntrusionRuleConfig
    | VehicleZoneRuleConfig
    | LoiteringRuleConfig
    | CrowdRuleConfig
    | LineCrossingRuleConfig
    | TamperRuleConfig,
    Field(discriminator="kind"),
]
