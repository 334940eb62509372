"""Settings of the monitoring center: a plain pydantic model the caller builds (the CLI reads the env)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from center_api.live.settings import LiveSettings


def _default_ack_sla() -> dict[int, float]:
    # Seconds to acknowledge, by severity (1 highest .. 4 lowest).
    return {1: 60.0, 2: 180.0, 3: 600.0, 4: 1800.0}


class CenterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    redis_url: str = Field(description="Redis URL of the bus, e.g. redis://127.0.0.1:6379/0")
    database_url: str = Field(
        default="sqlite+aiosqlite:///./.gridwatch/center.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///... or postgresql+asyncpg://...",
    )
    config_dir: Path = Field(description="Directory with grid.geojson, stations.yaml, cameras.yaml")
    data_dir: Path = Field(description="Directory for snapshots and other state on disk")
    jwt_secret: SecretStr = Field(description="HS256 secret of the bearer tokens")
    consumer_name: str = Field(
        min_length=1,
        max_length=200,
        description="Consumer name in the group; stable across restarts, so a restarted replica takes its "
        "own pending entries back at once",
    )
    locate_tolerance_m: float = Field(
        default=50,
        ge=0,
        le=10_000,
        description="A point outside every cell takes the nearest cell this close",
    )
    batch_size: int = Field(
        default=200, ge=1, le=5000, description="Stream entries read and committed at once"
    )
    block_ms: int = Field(default=1000, ge=1, le=60_000, description="XREADGROUP block time")
    claim_idle_ms: int = Field(
        default=60_000, ge=100, description="Pending entries idle this long are claimed from dead consumers"
    )
    claim_every_s: float = Field(default=5.0, gt=0, le=3600, description="How often to run XAUTOCLAIM")
    reap_idle_ms: int = Field(
        default=3_600_000,
        ge=1000,
        description="Consumers silent this long with nothing pending are removed from the group",
    )
    stream_keep_acked_s: float = Field(
        default=60.0,
        ge=0,
        le=7 * 86_400,
        description="Entries of gw:alerts that every consumer group acknowledged are trimmed after this "
        "(the incident store keeps them); the stream holds the backlog, not every snapshot",
    )
    ack_sla_s: dict[int, float] = Field(
        default_factory=_default_ack_sla,
        description="Seconds to acknowledge by severity; an incident still new after that escalates",
    )
    escalate_every_s: float = Field(default=5.0, gt=0, le=3600, description="How often escalation runs")
    feed_queue_size: int = Field(
        default=256, ge=1, le=100_000, description="Messages buffered per feed client before it is dropped"
    )
    sse_keepalive_s: float = Field(default=15.0, gt=0, le=300, description="SSE comment keep-alive interval")
    feed_clients_per_subject: int = Field(
        default=8,
        ge=1,
        le=10_000,
        description="Feed connections (WebSocket and SSE together) one token subject may hold open on one "
        "replica; the next is refused (SSE 429, WebSocket close 4429)",
    )
    token_failures_max: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="Failed token checks from one client address within token_failure_window_s before "
        "that address is refused (429 with Retry-After) for token_block_s",
    )
    token_failure_window_s: float = Field(
        default=60, gt=0, le=86_400, description="Window over which one address's failed token checks count"
    )
    token_block_s: float = Field(
        default=300, gt=0, le=86_400, description="How long an address over token_failures_max is refused"
    )
    token_failure_addresses: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Client addresses whose failed token checks are tracked at once (bounded memory); the "
        "least recently failing is forgotten first",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        max_length=4096,
        description="Bearer credential of the Prometheus scrape of /metrics (compared in constant time; user "
        "tokens are refused there); unset: /metrics is off (404)",
    )
    publish_cameras: bool = Field(
        default=True, description="Import cameras.yaml into the registry and publish it to Redis at start"
    )
    snapshot_max_bytes: int = Field(
        default=4_000_000,
        ge=1024,
        le=2**30,
        description="An alert's snapshot larger than this is not stored: the alert is, without it, and the "
        "stream entry goes to the dead-letter stream with the reason",
    )
    snapshot_retention_days: float = Field(
        default=90,
        ge=0,
        le=36_500,
        description="Snapshots last used longer ago are deleted unless an open incident references them; "
        "0 keeps them forever",
    )
    snapshot_sweep_every_s: float = Field(
        default=3600, gt=0, le=7 * 86_400, description="How often the snapshot retention sweep runs"
    )
    clip_max_bytes: int = Field(
        default=256 * 2**20,
        ge=1024,
        le=16 * 2**30,
        description="Largest event clip a worker may upload (PUT /api/v1/clips/{digest}); a larger one is "
        "refused (413 clip_too_large), read no further than this. max_body_bytes does not apply to it",
    )
    clip_station_quota_bytes: int = Field(
        default=50 * 2**30,
        ge=1024,
        le=2**50,
        description="Disk the clips of one station may take (the camera's station; 'unassigned' for a camera "
        "the center cannot place). A clip that would exceed it first evicts the station's oldest clips that "
        "no open incident references; if it still does not fit it is refused (507 clip_quota_exceeded)",
    )
    clip_retention_days: float = Field(
        default=90,
        ge=0,
        le=36_500,
        description="Clips last used longer ago are deleted unless an open incident references them; 0 keeps "
        "them forever",
    )
    clip_sweep_every_s: float = Field(
        default=3600, gt=0, le=7 * 86_400, description="How often the clip retention sweep runs"
    )
    clip_pending_timeout_s: float = Field(
        default=600,
        ge=1,
        le=7 * 86_400,
        description="An incident whose promised clip has neither arrived nor failed this long after its "
        "alert says the clip is unavailable (a late clip still makes it present)",
    )
    clip_preroll_s: float = Field(
        default=10,
        gt=0,
        le=600,
        description="Most seconds an operator may save from a camera's recent video (POST "
        "/api/v1/cameras/{id}/clips): the workers' pre-roll",
    )
    clip_link_ttl_s: float = Field(
        default=900,
        ge=10,
        le=86_400,
        description="Lifetime of the signed clip URLs the incident clip list gives (a <video> element "
        "cannot send a bearer token)",
    )
    live: LiveSettings = Field(
        default_factory=LiveSettings, description="The WebRTC live view (ICE servers: empty by default)"
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=64 * 2**20,
        description="Largest request body of a route other than the camera import; a larger one is refused "
        "(413 body_too_large) before it is read",
    )
    import_max_bytes: int = Field(
        default=16 * 2**20,
        ge=1024,
        le=2**30,
        description="Largest camera import body (CSV or GeoJSON); a larger one is refused (413 "
        "import_too_large), read no further than this",
    )
    import_max_rows: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        description="Most CSV records or GeoJSON features in one camera import (413 import_too_many_rows)",
    )
    import_max_line_chars: int = Field(
        default=8192,
        ge=256,
        le=1_000_000,
        description="Longest CSV record in a camera import, in characters, quoted line breaks included "
        "(413 import_line_too_long)",
    )
