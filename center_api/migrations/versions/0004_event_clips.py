"""Event clips: the clips on disk, their links to alerts and requests, and what each alert says of its clip.

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "clips",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=128), nullable=False),
        sa.Column(
            "station_id",
            sa.String(length=64),
            nullable=False,
            comment="Quota bucket: the camera's station, else its incident's, else 'unassigned'",
        ),
        sa.Column("size", sa.BigInteger(), nullable=False, comment="Bytes on disk"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("short_reason", sa.Text(), nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "last_used_at", sa.DateTime(timezone=True), nullable=False, comment="Stored or uploaded again"
        ),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.create_index("ix_clips_station_used", ["station_id", "last_used_at"], unique=False)
        batch_op.create_index("ix_clips_last_used", ["last_used_at"], unique=False)

    op.create_table(
        "clip_links",
        sa.Column("ref_id", sa.String(length=64), nullable=False, comment="Alert id or request id"),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("offset_s", sa.Double(), nullable=False, comment="Seconds from the clip's start"),
        sa.PrimaryKeyConstraint("ref_id", "digest"),
    )
    with op.batch_alter_table("clip_links", schema=None) as batch_op:
        batch_op.create_index("ix_clip_links_digest", ["digest"], unique=False)

    op.create_table(
        "clip_notes",
        sa.Column("ref_id", sa.String(length=64), nullable=False, comment="Alert id or request id"),
        sa.Column("incident_id", BIG_ID, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "since", sa.DateTime(timezone=True), nullable=False, comment="When the center learnt of the clip"
        ),
        sa.PrimaryKeyConstraint("ref_id"),
    )
    with op.batch_alter_table("clip_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clip_notes_incident_id"), ["incident_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("clip_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clip_notes_incident_id"))
    op.drop_table("clip_notes")
    with op.batch_alter_table("clip_links", schema=None) as batch_op:
        batch_op.drop_index("ix_clip_links_digest")
    op.drop_table("clip_links")
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.drop_index("ix_clips_last_used")
        batch_op.drop_index("ix_clips_station_used")
    op.drop_table("clips")
