"""Rule configurations carried by the `Camera` contract. Geometry is in normalized image coordinates."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Point = tuple[float, float]


def _check_polygon(points: tuple[Point, ...]) -> tuple[Point, ...]:
    if len(points) < 3:
        raise ValueError("a zone polygon needs at least 3 points")
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point ({x}, {y}) is outside the image; use normalized 0..1 coordinates")
    return points


class _RuleBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64, description="Rule id, unique per camera")
    severity: int = Field(default=2, ge=1, le=4, description="1 highest .. 4 lowest")
    classes: tuple[str, ...] = Field(default=("person",), description="Object classes the rule watches")
    min_confidence: float = Field(default=0.35, ge=0, le=1)
    cooldown_s: float = Field(default=60.0, ge=0, description="Quiet time before the same rule fires again")


class IntrusionRuleConfig(_RuleBase):
    kind: Literal["intrusion"] = "intrusion"
    zone: str = Field(default="zone", min_length=1, max_length=64, description="Zone id")
    polygon: tuple[Point, ...] = Field(description="Zone polygon, normalized (x, y) points")
    min_samples: int = Field(default=1, ge=1, description="Consecutive samples inside before firing")

    @field_validator("polygon")
    @classmethod
    def _polygon_ok(cls, value: tuple[Point, ...]) -> tuple[Point, ...]:
        return _check_polygon(value)


# One member today; further rule kinds join as `Annotated[A | B | ..., Field(discriminator="kind")]`.
RuleConfig = IntrusionRuleConfig
