"""callback nonces and refused notifications

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("inbound_notifications", sa.Column("refused_reason", sa.Text(), nullable=True))
    op.create_table(
        "callback_nonces",
        sa.Column("party", sa.String(length=20), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("party", "nonce", name=op.f("pk_callback_nonces")),
    )
    op.create_index(op.f("ix_callback_nonces_seen_at"), "callback_nonces", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_callback_nonces_seen_at"), table_name="callback_nonces")
    op.drop_table("callback_nonces")
    op.drop_column("inbound_notifications", "refused_reason")
