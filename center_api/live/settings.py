"""Settings of the WebRTC live view: plain pydantic, built by the caller (nothing reads the environment).

ICE servers are configuration and empty by default: the center then offers only its host candidates, which
is what a police LAN needs, and contacts no STUN or TURN server (aiortc's own default is a public one).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


class IceServer(BaseModel):
    """One STUN or TURN server of the site's own network (`turn:10.0.0.5:3478`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    urls: list[str] = Field(min_length=1, max_length=8, description="stun:/turn: URLs of one server")
    username: str | None = Field(default=None, max_length=256, description="TURN user name")
    credential: SecretStr | None = Field(default=None, description="TURN password (a secret)")

    @field_validator("urls")
    @classmethod
    def _ice_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(ICE_SCHEMES):
                raise ValueError(f"ICE server URL {url!r} must start with one of {', '.join(ICE_SCHEMES)}")
        return urls


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
    ice_servers: list[IceServer] = Field(
        default_factory=list,
        max_length=8,
        description="STUN/TURN servers for the center's side of WebRTC; empty (the default): host "
        "candidates only, nothing is contacted",
    )
