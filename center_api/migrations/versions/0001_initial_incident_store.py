"""initial incident store

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("cell_id", sa.String(length=64), nullable=False),
        sa.Column("cell_fixed", sa.Boolean(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cameras_cell_id"), ["cell_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cameras_station_id"), ["station_id"], unique=False)

    op.create_table(
        "incident_alerts",
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    with op.batch_alter_table("incident_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_alerts_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "incident_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_events_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index("ix_incident_events_station_id", ["station_id", "id"], unique=False)

    op.create_table(
        "incidents",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column(
            "alert_id", sa.String(length=64), nullable=False, comment="The first alert of the incident"
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("camera_id", sa.String(length=128), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=True),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("zone", sa.Text(), nullable=True),
        sa.Column("cell_id", sa.String(length=64), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=True),
        sa.Column("street_id", sa.String(length=64), nullable=True),
        sa.Column("district_id", sa.String(length=64), nullable=True),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("objects", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("snapshot", sa.String(length=64), nullable=True, comment="sha256 of the latest snapshot"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("open_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id"),
        sa.UniqueConstraint("open_key"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_camera_id", ["camera_id", "id"], unique=False)
        batch_op.create_index("ix_incidents_cell_id", ["cell_id", "id"], unique=False)
        batch_op.create_index("ix_incidents_community_id", ["community_id", "id"], unique=False)
        batch_op.create_index("ix_incidents_district_id", ["district_id", "id"], unique=False)
        batch_op.create_index("ix_incidents_first_seen", ["first_seen"], unique=False)
        batch_op.create_index(
            "ix_incidents_new_created", ["status", "escalated_at", "created_at"], unique=False
        )
        batch_op.create_index("ix_incidents_station_id", ["station_id", "id"], unique=False)
        batch_op.create_index("ix_incidents_status", ["status", "station_id"], unique=False)
        batch_op.create_index("ix_incidents_street_id", ["street_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_street_id")
        batch_op.drop_index("ix_incidents_status")
        batch_op.drop_index("ix_incidents_station_id")
        batch_op.drop_index("ix_incidents_new_created")
        batch_op.drop_index("ix_incidents_first_seen")
        batch_op.drop_index("ix_incidents_district_id")
        batch_op.drop_index("ix_incidents_community_id")
        batch_op.drop_index("ix_incidents_cell_id")
        batch_op.drop_index("ix_incidents_camera_id")

    op.drop_table("incidents")
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_events_station_id")
        batch_op.drop_index(batch_op.f("ix_incident_events_incident_id"))

    op.drop_table("incident_events")
    with op.batch_alter_table("incident_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_alerts_incident_id"))

    op.drop_table("incident_alerts")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cameras_station_id"))
        batch_op.drop_index(batch_op.f("ix_cameras_cell_id"))

    op.drop_table("cameras")
