"""Prediction intervals: bounds per level and step stored with each prediction.

Revision ID: 0003_prediction_intervals
Revises: 0002_paper_ledger
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_prediction_intervals"
down_revision: str | None = "0002_paper_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.add_column(sa.Column("intervals", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("interval_method", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.drop_column("interval_method")
        batch_op.drop_column("intervals")
