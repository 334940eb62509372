"""Covering index for windowed statistics (PostgreSQL index-only scans; a plain index elsewhere).

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCLUDE = ["kind", "cell_id", "community_id", "street_id", "district_id", "station_id"]


def upgrade() -> None:
    op.create_index("ix_incidents_first_seen_stats", "incidents", ["first_seen"], postgresql_include=INCLUDE)


def downgrade() -> None:
    op.drop_index("ix_incidents_first_seen_stats", table_name="incidents")
