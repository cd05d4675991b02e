"""Champion / challenger: each model version's evaluation and promotion status, and the audit
trail of every promotion change (``model_promotions``).

Revision ID: 0005_model_promotion
Revises: 0004_shared_models_and_decisions
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_model_promotion"
down_revision: str | None = "0004_shared_models_and_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.add_column(sa.Column("evaluation", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("promotion", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("promotion_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("promotion_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "model_promotions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("coin", sa.String(length=96), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("before", sa.String(length=16), nullable=True),
        sa.Column("after", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("manual", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_promotions")),
    )


def downgrade() -> None:
    op.drop_table("model_promotions")
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.drop_column("promotion_changed_at")
        batch_op.drop_column("promotion_reason")
        batch_op.drop_column("promotion")
        batch_op.drop_column("evaluation")
