"""Per-day rollup of incident counts by grid unit and kind (statistics read whole days from it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incident_counts",
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("level", "day", "unit_id", "station_id", "kind"),
    )
    # Backfill from the incidents already stored (the writer keeps it current from here on).
    from center_api.store.rollup import rebuild_sql

    op.execute(rebuild_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    op.drop_table("incident_counts")
