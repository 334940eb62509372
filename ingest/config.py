"""Configuration of one ingest worker: a plain pydantic model that the caller (the CLI) builds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIB = 1024 * 1024


class ClipConfig(BaseModel):
    """Event clips: the pre-roll ring of every camera and the clips cut from it (`ingest.clips`).

    Memory: a camera at B Mbit/s needs B/8 MB per second held plus one GOP. The ring holds the pre-roll plus
    `alert_lag_s` (the detection lag): 13 s at 4 Mbit/s is 6.5 MB, so the 8 MiB per-camera bound leaves a 2 s
    GOP of slack, and 768 MiB covers ~100 such cameras.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="Keep a pre-roll ring per camera and cut clips on alerts")
    preroll_s: float = Field(
        default=10,
        gt=0,
        le=120,
        description="Seconds of video kept before an alert (and for 'save the last N')",
    )
    postroll_s: float = Field(default=10, ge=0, le=600, description="Seconds recorded after the last alert")
    alert_lag_s: float = Field(
        default=3,
        ge=0,
        le=60,
        description="Seconds the ring keeps beyond the pre-roll: an alert reaches the recorder after its "
        "frame (decode, detection queue, inference), and its pre-roll must still be held then",
    )
    clip_max_s: float = Field(
        default=60, gt=0, le=3600, description="Longest clip: alerts of one incident extend it up to this"
    )
    ring_max_bytes: int = Field(
        default=8 * MIB,
        ge=64 * 1024,
        le=1024 * MIB,
        description="Bound of one camera's ring; a camera over it keeps fewer seconds (health says so)",
    )
    ring_budget_bytes: int = Field(
        default=768 * MIB,
        ge=MIB,
        le=256 * 1024 * MIB,
        description="Bound of all rings of one worker together",
    )

    @model_validator(mode="after")
    def _lengths(self) -> ClipConfig:
        if self.clip_max_s < self.preroll_s + self.postroll_s:
            raise ValueError("clip_max_s must be at least preroll_s + postroll_s")
        return self


class IngestConfig(BaseModel):
    """Settings of one `IngestWorker` process. Durations are seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:@-]+$",
        description="Unique per worker process, e.g. '<host>-<pid>' or '<pod>-<n>' for `--processes N`",
    )
    open_timeout_s: float = Field(default=10, gt=0, le=300, description="Timeout to open a stream")
    read_timeout_s: float = Field(default=10, gt=0, le=300, description="Socket timeout of one read")
    stall_timeout_s: float = Field(
        default=10, gt=0, le=300, description="Watchdog: no packet for this long while connected -> reconnect"
    )
    offline_after_s: float = Field(
        default=10, ge=0, le=3600, description="Down longer than this -> offline and one camera_offline alert"
    )
    backoff_initial_s: float = Field(
        default=1, gt=0, le=60, description="First reconnect delay (cap of jitter)"
    )
    backoff_max_s: float = Field(default=30, gt=0, le=3600, description="Largest reconnect delay")
    max_concurrent_reconnects: int = Field(
        default=16, ge=1, le=10_000, description="Streams of this worker that may be opening at once"
    )
    health_ttl_s: float = Field(default=30, gt=0, le=3600, description="TTL of the health record in Redis")
    health_interval_s: float = Field(default=2, gt=0, le=600, description="How often health is written")
    heartbeat_s: float = Field(
        default=2, gt=0, le=600, description="Worker heartbeat interval (sharded mode)"
    )
    sharded: bool = Field(default=False, description="Share cameras with other workers through Redis")
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="`ingest.run.serve` serves Prometheus metrics on this port (0: any free port)",
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address the metrics server binds")
    decode_threads: int = Field(
        default=0, ge=0, le=16, description="Decoder threads per full-decode stream; 0 sizes them by load"
    )
    keyframe_skip_loop_filter: bool = Field(
        default=True,
        description="Keyframe mode: decode without the deblocking filter (~9% less decode CPU; at 4 Mbit/s "
        "1080p the image differs by ~48 dB PSNR, invisible); off for the exact picture",
    )
    clips: ClipConfig = Field(
        default_factory=ClipConfig, description="Event clips: pre-roll ring, post-roll, bounds"
    )
    drain_s: float | None = Field(
        default=None,
        ge=0,
        le=600,
        description="Sharded stop: read this long after leaving, so others take over (None: heartbeat_s)",
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> IngestConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self

    @property
    def worker_ttl_s(self) -> float:
        """A worker whose last heartbeat is older than this is dead (one and a half heartbeats)."""
        return self.heartbeat_s * 1.5
