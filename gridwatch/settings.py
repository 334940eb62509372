"""GridWatch settings, read from the environment (`GRIDWATCH_*`) in the entry point only.

Subsystems take their own plain config models (`IngestConfig`, `DetectionConfig`, `CenterSettings`);
this module builds them. Nothing here runs at import time.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from ingest.config import ClipConfig

MIB = 2**20

# Looked for, in order, when GRIDWATCH_MODEL is not set (paths relative to the working directory).
DEFAULT_MODELS = (Path("models/yolov8n.onnx"), Path("../shared/models/yolov8n_fp32.onnx"))


class GridwatchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="Redis/Valkey URL; unset: `up` starts an embedded Valkey, others use localhost",
    )
    data_dir: Path = Field(default=Path(".gridwatch"), description="SQLite, snapshots, journals, demo clips")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    config_dir: Path = Field(
        default=Path("configs/demo"), description="grid.geojson, stations.yaml, cameras.yaml"
    )
    model: Path | None = Field(
        default=None, description="Detector weights: .pt, .onnx, OpenVINO dir, .engine"
    )
    imgsz: int = Field(default=640, ge=32, le=4096, description="Detector input size")
    device: str = Field(default="cpu", description="cpu or cuda:N")
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 secret; default: kept in data_dir")
    api_host: str = Field(default="127.0.0.1")
    api_port: int = Field(default=8000, ge=0, le=65535)
    demo_rtsp_port: int = Field(default=8554, ge=0, le=65535)
    snapshot_retention_days: float = Field(
        default=90,
        ge=0,
        le=36_500,
        description="Center: snapshots unused this long are deleted unless an open incident needs them; "
        "0 keeps them forever",
    )

    consumer_name: str | None = Field(
        default=None,
        description="Center: consumer name in the alert group; default center-<host> (stable across "
        "restarts); give each replica on one host its own",
    )
    claim_idle_ms: int = Field(
        default=60_000, ge=100, description="Center: pending entries idle this long are claimed from others"
    )
    reap_idle_ms: int = Field(
        default=3_600_000, ge=1000, description="Center: silent consumers with nothing pending are removed"
    )
    stream_keep_acked_s: float = Field(
        default=60.0,
        ge=0,
        le=7 * 86_400,
        description="Center: acknowledged gw:alerts entries are trimmed after this (the store keeps them)",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        max_length=4096,
        description="Center: bearer credential of the Prometheus scrape of /metrics (user tokens are refused "
        "there); unset: /metrics is off (404)",
    )
    feed_clients_per_subject: int = Field(
        default=8, ge=1, le=10_000, description="Center: feed connections one token subject may hold open"
    )
    token_failures_max: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="Center: failed token checks from one address within the window before it is refused",
    )
    token_failure_window_s: float = Field(
        default=60, gt=0, le=86_400, description="Center: window of the failed token checks of one address"
    )
    token_block_s: float = Field(
        default=300, gt=0, le=86_400, description="Center: how long an address over the limit is refused"
    )
    ice_servers: str = Field(
        default="",
        description="Live view: comma-separated stun:/turn: URLs of the site's own ICE servers; "
        "empty (default): host candidates only, nothing is contacted",
    )
    ice_username: str | None = Field(default=None, description="Live view: TURN user name")
    ice_credential: SecretStr | None = Field(default=None, description="Live view: TURN password")

    center_url: str = Field(
        default="",
        max_length=2048,
        pattern=r"^(https?://\S+)?$",
        description="Worker: the center API's base URL that clips are uploaded to (http(s)://host:port); "
        "empty (default): clips are spooled on disk but not uploaded",
    )
    worker_token: SecretStr = Field(
        default=SecretStr(""),
        max_length=4096,
        description="Worker: bearer token of role worker for the clip upload (`gridwatch token issue --role "
        "worker`)",
    )
    clips_enabled: bool = Field(default=True, description="Worker: keep a pre-roll ring and cut event clips")
    clip_preroll_s: float = Field(
        default=10, gt=0, le=120, description="Worker: seconds of video before an alert"
    )
    clip_postroll_s: float = Field(
        default=10, ge=0, le=600, description="Worker: seconds after the last alert"
    )
    clip_max_s: float = Field(
        default=60, gt=0, le=3600, description="Worker: longest clip (alerts of one incident extend it)"
    )
    clip_alert_lag_s: float = Field(
        default=3,
        ge=0,
        le=60,
        description="Worker: seconds the ring keeps beyond the pre-roll for the detection lag (an alert "
        "reaches the recorder after its frame)",
    )
    clip_station_quota_gb: float = Field(
        default=50, gt=0, le=1024 * 1024, description="Center: GiB of clips one station may keep"
    )
    clip_retention_days: float = Field(
        default=90,
        ge=0,
        le=36_500,
        description="Center: clips unused this long are deleted unless an open incident needs them; "
        "0 keeps them forever",
    )
    clip_pending_timeout_s: float = Field(
        default=600,
        ge=1,
        le=7 * 86_400,
        description="Center: a promised clip that has neither arrived nor failed this long after its alert "
        "is shown as unavailable (a late clip still shows)",
    )
    ring_max_mb: float = Field(
        default=8, ge=0.0625, le=1024, description="Worker: MiB of pre-roll ring one camera may hold"
    )
    ring_budget_mb: float = Field(
        default=768, ge=1, le=256 * 1024, description="Worker: MiB of pre-roll ring all cameras together"
    )
    clip_spool_mb: float = Field(
        default=2048,
        ge=1,
        le=1024 * 1024,
        description="Worker: MiB of clips kept on disk while the center is unreachable (the oldest go first)",
    )

    def clip_config(self) -> ClipConfig:
        """The worker's event clip settings; pydantic's ValidationError when they do not fit together."""
        from ingest.config import ClipConfig

        return ClipConfig(
            enabled=self.clips_enabled,
            preroll_s=self.clip_preroll_s,
            postroll_s=self.clip_postroll_s,
            clip_max_s=self.clip_max_s,
            alert_lag_s=self.clip_alert_lag_s,
            ring_max_bytes=int(self.ring_max_mb * MIB),
            ring_budget_bytes=int(self.ring_budget_mb * MIB),
        )

    def ice_server_urls(self) -> list[str]:
        return [url.strip() for url in self.ice_servers.split(",") if url.strip()]

    def resolved_redis_url(self) -> str:
        return self.redis_url or "redis://127.0.0.1:6379/0"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'center.db').resolve()}"

    def resolved_model(self) -> Path:
        candidates = (self.model,) if self.model else DEFAULT_MODELS
        for path in candidates:
            if path is not None and path.exists():
                return path
        tried = ", ".join(str(p) for p in candidates if p is not None)
        raise FileNotFoundError(
            f"no detector model found (tried {tried}); set GRIDWATCH_MODEL to a .pt, .onnx, "
            "OpenVINO or TensorRT file that Ultralytics can load"
        )

    def resolved_jwt_secret(self) -> str:
        """The configured secret, else one generated once and kept in `data_dir/jwt_secret` (mode 600)."""
        if self.jwt_secret:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def default_consumer_name() -> str:
    return f"center-{socket.gethostname()}"


def default_worker_id() -> str:
    """The host's name: stable across restarts, so a restarted worker finds its own alert journal (and,
    sharded, takes back its cameras). Several workers on one host need their own ids (`--processes` gives
    them)."""
    return socket.gethostname()
