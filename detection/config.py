"""Detection settings: plain pydantic models built by the caller (the CLI reads the environment, not us)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class MotionConfig(BaseModel):
    """Motion gating: decides per sampled frame whether it is worth an inference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="Off: every sampled frame goes to the detector")
    width: int = Field(
        default=160, ge=32, le=1280, description="Width of the grey frame motion is measured on"
    )
    pixel_threshold: int = Field(
        default=25, ge=1, le=255, description="Grey-level change that counts as motion"
    )
    min_changed: float = Field(
        default=0.002,
        gt=0,
        le=1,
        description="Fraction of (unmasked) pixels that must change to call it motion",
    )
    hangover_samples: int = Field(
        default=1, ge=0, le=100, description="Samples still sent to the detector after motion stops"
    )
    track_check_s: float = Field(
        default=3.0,
        gt=0,
        le=600,
        description="While a track is alive, check it at least this often without motion",
    )
    refresh_s: float = Field(
        default=60.0, gt=0, le=86_400, description="Run the detector at least this often on any camera"
    )


class TrackerConfig(BaseModel):
    """ByteTrack settings, tuned for sampled rates of 0.5-5 frames/s (objects move far between samples)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="Off: objects carry no track id")
    high_thresh: float = Field(default=0.3, ge=0, le=1, description="First-association confidence")
    low_thresh: float = Field(default=0.1, ge=0, le=1, description="Second-association confidence")
    new_track_thresh: float = Field(default=0.35, ge=0, le=1, description="Confidence to start a track")
    match_thresh: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Largest 1-IoU cost to match; high, because sampled boxes move far",
    )
    buffer_samples: int = Field(default=10, ge=1, le=1000, description="Samples a lost track is kept")
    motion_buffer: float = Field(
        default=0.6,
        ge=0,
        le=5,
        description="Expected motion per second, in box heights, padded onto boxes for matching "
        "(buffered IoU)",
    )


class DetectionConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: Path = Field(
        description="Model file or directory Ultralytics loads: .pt, .onnx, OpenVINO dir, .engine"
    )
    imgsz: int = Field(default=640, ge=32, le=4096, multiple_of=32, description="Detector input size, pixels")
    device: str = Field(default="cpu", min_length=1, max_length=32, description="'cpu' or 'cuda:N'")
    conf: float = Field(default=0.25, ge=0, le=1, description="Detector confidence threshold")
    batch_size: int = Field(default=4, ge=1, le=256, description="Most frames per detector call")
    max_frame_age_s: float = Field(default=3.0, gt=0, le=600, description="Older waiting frames are dropped")
    worker_id: str = Field(default="worker", min_length=1, max_length=128, description="Stamped on alerts")
    snapshot_max_bytes: int = Field(default=200_000, ge=10_000, le=5_000_000, description="JPEG size limit")
    snapshot_width: int = Field(
        default=960, ge=160, le=3840, description="Snapshots wider than this are scaled"
    )
    classes: tuple[str, ...] | None = Field(
        default=None,
        description="Class names the detector keeps; None keeps every class (rules filter further)",
    )
    motion: MotionConfig = Field(default_factory=MotionConfig)
    motion_masks: dict[str, tuple[tuple[tuple[float, float], ...], ...]] = Field(
        default_factory=dict,
        description="Per camera id: normalized polygons where motion is ignored (trees, screens, flags)",
    )
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)

    @field_validator("motion_masks")
    @classmethod
    def _masks_ok(
        cls, value: dict[str, tuple[tuple[tuple[float, float], ...], ...]]
    ) -> dict[str, tuple[tuple[tuple[float, float], ...], ...]]:
        for camera_id, polygons in value.items():
            for polygon in polygons:
                if len(polygon) < 3:
                    raise ValueError(f"{camera_id}: a mask polygon needs at least 3 points")
                if any(not (0 <= x <= 1 and 0 <= y <= 1) for x, y in polygon):
                    raise ValueError(f"{camera_id}: mask points are normalized 0..1 coordinates")
        return value
