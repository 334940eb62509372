"""Settings of the WebRTC live view: plain pydantic, built by the caller (nothing reads the environment)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LiveSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    open_timeout_s: float = Field(
        default=8.0, gt=0, le=60, description="Time to open a camera's RTSP stream and get its first packet"
    )
    read_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Silence on an open stream after which the camera counts as lost",
    )
    probesize: int = Field(
        default=500_000,
        ge=32,
        le=50_000_000,
        description="Bytes FFmpeg may read from an RTSP stream to learn its codec (the SDP usually says)",
    )
    analyzeduration_us: int = Field(
        default=0,
        ge=0,
        le=10_000_000,
        description="Microseconds of an RTSP stream FFmpeg analyses before the first packet is relayed",
    )
    max_viewers_per_camera: int = Field(default=16, ge=1, le=256, description="Viewers of one camera at once")
    max_cameras: int = Field(default=32, ge=1, le=1024, description="Cameras pulled for live view at once")
    viewer_queue: int = Field(
        default=60,
        ge=4,
        le=1000,
        description="Encoded frames buffered per viewer before it skips to a keyframe",
    )
    linger_s: float = Field(
        default=0.0, ge=0, le=60, description="How long a pull stays open after its last viewer leaves"
    )
    vp8_bitrate: int = Field(
        default=1_500_000,
        ge=100_000,
        le=20_000_000,
        description="VP8 bitrate, when a stream must be re-encoded",
    )
    vp8_keyframe_s: float = Field(
        default=1.0, gt=0, le=10, description="VP8 keyframe interval, so new viewers start within this time"
    )
    prefer_passthrough: bool = Field(
        default=True, description="Send H.264 as it comes from the camera when the browser accepts it"
    )
    connect_timeout_s: float = Field(
        default=30.0, gt=0, le=300, description="A viewer whose peer connection is not up by then is dropped"
    )
