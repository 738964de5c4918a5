"""settlement

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 04:00:29.401670
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commission_rules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("scope_value", sa.String(length=64), nullable=True),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("floor_minor", sa.BigInteger(), nullable=True),
        sa.Column("cap_minor", sa.BigInteger(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_rules")),
    )
    op.create_index(op.f("ix_commission_rules_scope"), "commission_rules", ["scope"], unique=False)
    op.create_table(
        "settlement_cycles",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("statements", sa.Integer(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("triggered_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_cycles")),
        sa.UniqueConstraint("cutoff", name=op.f("uq_settlement_cycles_cutoff")),
    )
    op.create_table(
        "settlement_lines",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cycle_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("order_no", sa.String(length=40), nullable=False),
        sa.Column("promoter_id", sa.String(length=64), nullable=True),
        sa.Column("gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("commission_minor", sa.BigInteger(), nullable=False),
        sa.Column("promoter_minor", sa.BigInteger(), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("rule", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_lines")),
        sa.UniqueConstraint("cycle_id", "order_no", name="uq_settlement_lines_cycle_order"),
    )
    op.create_index(op.f("ix_settlement_lines_order_no"), "settlement_lines", ["order_no"], unique=False)
    op.create_index("ix_settlement_lines_cycle_merchant", "settlement_lines", ["cycle_id", "merchant_id"], unique=False)
    op.create_table(
        "settlement_statements",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cycle_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("commission_minor", sa.BigInteger(), nullable=False),
        sa.Column("promoter_minor", sa.BigInteger(), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("adjustment_minor", sa.BigInteger(), nullable=False),
        sa.Column("adjustment_reason", sa.Text(), nullable=True),
        sa.Column("adjusted_by_key_id", sa.BigInteger(), nullable=True),
        sa.Column("adjusted_by", sa.String(length=200), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("rejected_reason", sa.Text(), nullable=True),
        sa.Column("ledger_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_statements")),
        sa.UniqueConstraint("cycle_id", "merchant_id", name="uq_settlement_statements_cycle_merchant"),
    )
    op.create_index(op.f("ix_settlement_statements_cycle_id"), "settlement_statements", ["cycle_id"], unique=False)
    op.create_index(
        op.f("ix_settlement_statements_merchant_id"), "settlement_statements", ["merchant_id"], unique=False
    )
    op.create_index(op.f("ix_settlement_statements_status"), "settlement_statements", ["status"], unique=False)
    op.add_column("orders", sa.Column("settleable_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("orders", sa.Column("settlement_cycle", sa.String(length=40), nullable=True))
    op.add_column("orders", sa.Column("campaign_id", sa.String(length=64), nullable=True))
    op.add_column("orders", sa.Column("promoter_bps", sa.Integer(), server_default="0", nullable=False))
    # What the next cycle claims: settleable, unsettled, unclaimed orders by the time they became settleable.
    op.create_index(
        "ix_orders_settlement_queue",
        "orders",
        ["settleable_at", "order_no"],
        unique=False,
        postgresql_where=sa.text("settleable AND NOT settled AND settlement_cycle IS NULL"),
    )
    # A statement's orders are found by (cycle, merchant) when it is approved or rejected.
    op.create_index("ix_orders_settlement_cycle_merchant", "orders", ["settlement_cycle", "merchant_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_orders_settlement_queue", table_name="orders")
    op.drop_index("ix_orders_settlement_cycle_merchant", table_name="orders")
    op.drop_column("orders", "promoter_bps")
    op.drop_column("orders", "campaign_id")
    op.drop_column("orders", "settlement_cycle")
    op.drop_column("orders", "settleable_at")
    op.drop_index(op.f("ix_settlement_statements_status"), table_name="settlement_statements")
    op.drop_index(op.f("ix_settlement_statements_merchant_id"), table_name="settlement_statements")
    op.drop_index(op.f("ix_settlement_statements_cycle_id"), table_name="settlement_statements")
    op.drop_table("settlement_statements")
    op.drop_index("ix_settlement_lines_cycle_merchant", table_name="settlement_lines")
    op.drop_index(op.f("ix_settlement_lines_order_no"), table_name="settlement_lines")
    op.drop_table("settlement_lines")
    op.drop_table("settlement_cycles")
    op.drop_index(op.f("ix_commission_rules_scope"), table_name="commission_rules")
    op.drop_table("commission_rules")
