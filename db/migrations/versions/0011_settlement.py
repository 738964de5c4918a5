"""settlement: cycle claiming closes at aggregation; statements can fail visibly

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Set when the cycle's statements are aggregated: from then on no claim page of that cycle may commit.
    op.add_column("settlement_cycles", sa.Column("aggregated_at", sa.DateTime(timezone=True), nullable=True))
    # Why a statement's posting could not be built (status FAILED); finance reads it and rejects.
    op.add_column("settlement_statements", sa.Column("failure", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("settlement_statements", "failure")
    op.drop_column("settlement_cycles", "aggregated_at")
