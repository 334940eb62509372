"""SQLAlchemy models of the incident store. The Alembic migrations in `center_api/migrations` mirror them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from center_api.workflow import OPEN_STATUSES, Status, allowed_transitions
from contracts import GeoPoint

# SQLite has no 64-bit autoincrement BIGINT; INTEGER PRIMARY KEY is its rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


@dataclass(frozen=True, slots=True)
class ClipSummary:
    """An incident's clip as the API shows it (`center_api.store.clipstate` works it out for a page)."""

    state: str | None = None  # pending | present | unavailable; None: no clip was ever expected
    reason: str | None = None  # why unavailable, or why a present clip is short


NO_CLIP = ClipSummary()


class Incident(Base):
    """One incident: the one place its fields are declared. The batch writer derives its Core column lists
    from this table, and `schemas.IncidentPublic` reads instances by attribute: the columns, and the derived
    values below."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(64), unique=True, comment="The first alert of the incident")
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="new")
    camera_id: Mapped[str] = mapped_column(String(128))
    site_id: Mapped[str | None] = mapped_column(String(128))
    rule: Mapped[str | None] = mapped_column(Text)
    zone: Mapped[str | None] = mapped_column(Text)
    cell_id: Mapped[str] = mapped_column(String(64))
    community_id: Mapped[str | None] = mapped_column(String(64))
    street_id: Mapped[str | None] = mapped_column(String(64))
    district_id: Mapped[str | None] = mapped_column(String(64))
    station_id: Mapped[str] = mapped_column(String(64))
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=1)
    objects: Mapped[list[Any]] = mapped_column(JSON, default=list)
    detail: Mapped[str | None] = mapped_column(Text)
    snapshot: Mapped[str | None] = mapped_column(String(64), comment="sha256 of the latest snapshot")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # camera|rule|zone while the incident is open, NULL once closed: the unique index lets at most one open
    # incident exist per key, across replicas, so repeats fold instead of opening duplicates.
    open_key: Mapped[str | None] = mapped_column(Text, unique=True)

    __table_args__ = (
        Index("ix_incidents_station_id", "station_id", "id"),
        Index("ix_incidents_cell_id", "cell_id", "id"),
        Index("ix_incidents_community_id", "community_id", "id"),
        Index("ix_incidents_street_id", "street_id", "id"),
        Index("ix_incidents_district_id", "district_id", "id"),
        Index("ix_incidents_camera_id", "camera_id", "id"),
        Index("ix_incidents_status", "status", "station_id"),
        Index("ix_incidents_first_seen", "first_seen"),
        Index(
            "ix_incidents_first_seen_stats",
            "first_seen",
            postgresql_include=["kind", "cell_id", "community_id", "street_id", "district_id", "station_id"],
        ),
        Index("ix_incidents_new_created", "status", "escalated_at", "created_at"),
    )

    # Not a column: what the reader or writer worked out about the incident's clips for the page it returns.
    clip = NO_CLIP

    # Derived values of the public model (plain properties: nothing stored, nothing to keep in step).
    @property
    def clip_state(self) -> str | None:
        return self.clip.state

    @property
    def clip_reason(self) -> str | None:
        return self.clip.reason

    @property
    def clips_url(self) -> str | None:
        """Where the API lists the incident's clips (`GET /api/v1/incidents/{id}/clips`), once one is due."""
        return f"/api/v1/incidents/{self.id}/clips" if self.clip.state else None

    @property
    def snapshot_url(self) -> str | None:
        """Where the API serves the latest snapshot (`GET /api/v1/incidents/{id}/snapshot`), if any."""
        return f"/api/v1/incidents/{self.id}/snapshot" if self.snapshot else None

    @property
    def location(self) -> GeoPoint | None:
        return None if self.lat is None or self.lon is None else GeoPoint(lat=self.lat, lon=self.lon)

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None

    @property
    def open(self) -> bool:
        return Status(self.status) in OPEN_STATUSES

    @property
    def allowed_transitions(self) -> tuple[Status, ...]:
        return allowed_transitions(self.status)


class IncidentAlert(Base):
    """Every alert folded into an incident: the idempotency record (a replayed alert id is skipped)."""

    __tablename__ = "incident_alerts"

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigId, index=True)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IncidentEvent(Base):
    """Append-only history: created, updated (a fold), escalated, and workflow transitions by a named user.

    The id orders the live feed: SSE `Last-Event-ID` resumes from it.
    """

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(BigId, index=True)
    station_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(128))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_incident_events_station_id", "station_id", "id"),)


class IncidentCount(Base):
    """Rollup of incidents by UTC day of `first_seen`, grid unit and kind, kept in the writer's transaction.

    One row per (level, day, unit, station, kind); `level` is cell|community|street|district|station and
    `unit_id` the unit of that level ('' for none). Statistics read whole days here and the raw table only for
    the partial days at the edges of a window, so they equal counting `incidents` exactly.
    """

    __tablename__ = "incident_counts"

    level: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class CameraRow(Base):
    """The camera registry (source of truth). `data` is the Camera JSON, url included; APIs redact it."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    cell_id: Mapped[str] = mapped_column(String(64), index=True)
    cell_fixed: Mapped[bool] = mapped_column(Boolean, default=False)
    station_id: Mapped[str] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Clip(Base):
    """An event clip (MP4) on disk, content-addressed by its SHA-256 (`center_api.clips.files`)."""

    __tablename__ = "clips"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(128))
    station_id: Mapped[str] = mapped_column(
        String(64), comment="Quota bucket: the camera's station, else its incident's, else 'unassigned'"
    )
    size: Mapped[int] = mapped_column(BigInteger, comment="Bytes on disk")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_s: Mapped[float]
    codec: Mapped[str] = mapped_column(String(32))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    short_reason: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, comment="Stored or uploaded again")

    __table_args__ = (
        Index("ix_clips_station_used", "station_id", "last_used_at"),
        Index("ix_clips_last_used", "last_used_at"),
    )


class ClipLink(Base):
    """Which alert (or on-demand request) a clip shows, and where in it the alert fired."""

    __tablename__ = "clip_links"

    ref_id: Mapped[str] = mapped_column(String(64), primary_key=True, comment="Alert id or request id")
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    offset_s: Mapped[float] = mapped_column(comment="Seconds from the clip's start")

    __table_args__ = (Index("ix_clip_links_digest", "digest"),)


class ClipNoteRow(Base):
    """What is known of the clip of one alert or on-demand request: its incident (once the alert is stored)
    and the note (pending, or unavailable with a reason; NULL where a clip came with no note)."""

    __tablename__ = "clip_notes"

    ref_id: Mapped[str] = mapped_column(String(64), primary_key=True, comment="Alert id or request id")
    incident_id: Mapped[int | None] = mapped_column(BigId, index=True)
    state: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(UTCDateTime, comment="When the center learnt of the clip")
