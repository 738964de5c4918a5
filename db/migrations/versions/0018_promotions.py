"""promotions: campaigns, coupons, the discount and subsidy per order item

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("funded_by", sa.String(10), nullable=False),
        sa.Column("budget_minor", sa.BigInteger(), nullable=False),
        sa.Column("spent_minor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("terms", JSONB(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("spent_minor >= 0 AND spent_minor <= budget_minor", name="ck_campaigns_within_budget"),
    )
    op.create_table(
        "coupons",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("campaign_id", sa.String(40), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("order_no", sa.String(40), nullable=True),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("subsidy_minor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_coupons_campaign_customer", "coupons", ["campaign_id", "customer_id"])
    op.create_index("ix_coupons_order_no", "coupons", ["order_no"])
    for table in ("order_items", "orders"):
        op.add_column(table, sa.Column("subsidy_minor", sa.BigInteger(), nullable=False, server_default="0"))
    # The subsidy in a settled line's gross, shown per line on the merchant's statement.
    op.add_column("settlement_lines", sa.Column("subsidy_minor", sa.BigInteger(), nullable=False, server_default="0"))
    # An item refund's share of the subsidy (None: an amount refund, reversed pro rata).
    op.add_column("refunds", sa.Column("subsidy_minor", sa.BigInteger(), nullable=True))
    op.add_column("order_items", sa.Column("discount_minor", sa.BigInteger(), nullable=False, server_default="0"))
    # What refunds have taken back of the subsidy so far (escrow → marketing), for the escrow check.
    op.add_column("orders", sa.Column("subsidy_reversed_minor", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("orders", "subsidy_reversed_minor")
    op.drop_column("order_items", "discount_minor")
    op.drop_column("refunds", "subsidy_minor")
    op.drop_column("settlement_lines", "subsidy_minor")
    for table in ("order_items", "orders"):
        op.drop_column(table, "subsidy_minor")
    op.drop_table("coupons")
    op.drop_table("campaigns")
