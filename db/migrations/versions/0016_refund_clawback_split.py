"""refunds: what a refund after settlement took from the merchant's available balance

Revision ID: 0016
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written in the transaction that posts the refund, so the merchant's available balance can be checked
    # against a business record (settled − withdrawn − clawed back) and not only against the postings.
    op.add_column("refunds", sa.Column("from_available_minor", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("refunds", "from_available_minor")
