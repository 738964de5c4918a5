"""withdrawals and payout batches

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "withdrawals",
        sa.Column("withdrawal_id", sa.String(length=48), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("bank_account_name", sa.String(length=200), nullable=False),
        sa.Column("bank_account_enc", sa.Text(), nullable=False),
        sa.Column("bank_account_last4", sa.String(length=4), nullable=False),
        sa.Column("bank_name", sa.String(length=100), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_by_key_id", sa.BigInteger(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.String(length=48), nullable=True),
        sa.Column("bank_ref", sa.String(length=100), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("freeze_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("outcome_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("withdrawal_id", name=op.f("pk_withdrawals")),
    )
    op.create_index(op.f("ix_withdrawals_batch_id"), "withdrawals", ["batch_id"], unique=False)
    op.create_index("ix_withdrawals_merchant_created", "withdrawals", ["merchant_id", "created_at"], unique=False)
    op.create_index("ix_withdrawals_queued", "withdrawals", ["status", "queued_at"], unique=False)
    op.create_table(
        "payout_batches",
        sa.Column("batch_id", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("paid", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("unknown", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_payout_batches")),
    )


def downgrade() -> None:
    op.drop_table("payout_batches")
    op.drop_index("ix_withdrawals_queued", table_name="withdrawals")
    op.drop_index("ix_withdrawals_merchant_created", table_name="withdrawals")
    op.drop_index(op.f("ix_withdrawals_batch_id"), table_name="withdrawals")
    op.drop_table("withdrawals")
