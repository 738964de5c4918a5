"""captures and refunds

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 03:43:20.756164
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "captures",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("order_no", sa.String(length=40), nullable=False),
        sa.Column("payment_no", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("channel_txn_id", sa.String(length=100), nullable=True),
        sa.Column("extra", sa.Boolean(), nullable=False),
        sa.Column("ledger_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captures")),
        sa.UniqueConstraint("payment_no", "channel", name="uq_captures_payment_channel"),
    )
    op.create_index(op.f("ix_captures_order_no"), "captures", ["order_no"], unique=False)
    op.create_table(
        "refunds",
        sa.Column("refund_no", sa.String(length=48), nullable=False),
        sa.Column("order_no", sa.String(length=40), nullable=False),
        sa.Column("payment_no", sa.String(length=40), nullable=False),
        sa.Column("capture_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_by_key_id", sa.BigInteger(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("ledger_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["capture_id"], ["captures.id"], name=op.f("fk_refunds_capture_id_captures")),
        sa.PrimaryKeyConstraint("refund_no", name=op.f("pk_refunds")),
    )
    op.create_index(op.f("ix_refunds_capture_id"), "refunds", ["capture_id"], unique=False)
    op.create_index(op.f("ix_refunds_order_no"), "refunds", ["order_no"], unique=False)
    op.create_index(op.f("ix_refunds_status"), "refunds", ["status"], unique=False)
    op.create_table(
        "refund_attempts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("refund_no", sa.String(length=48), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["refund_no"], ["refunds.refund_no"], name=op.f("fk_refund_attempts_refund_no_refunds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_attempts")),
        sa.UniqueConstraint("refund_no", "seq", name="uq_refund_attempts_refund_seq"),
    )
    op.create_index(op.f("ix_refund_attempts_refund_no"), "refund_attempts", ["refund_no"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_refund_attempts_refund_no"), table_name="refund_attempts")
    op.drop_table("refund_attempts")
    op.drop_index(op.f("ix_refunds_status"), table_name="refunds")
    op.drop_index(op.f("ix_refunds_order_no"), table_name="refunds")
    op.drop_index(op.f("ix_refunds_capture_id"), table_name="refunds")
    op.drop_table("refunds")
    op.drop_index(op.f("ix_captures_order_no"), table_name="captures")
    op.drop_table("captures")
