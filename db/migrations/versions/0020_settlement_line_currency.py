"""settlement lines carry their order's currency; settling an order writes one index fewer

A cycle's statements are one per merchant and currency. Aggregating them (and verifying that every line
is in a statement) joined each line back to its order for nothing but the currency: 100,000 lookups of
`orders` per 100,000-order cycle (a hash of every order there is, once the cycle is large), twice a
cycle. The line now carries the currency its order was paid in, written by the claim with the rest of
the order's snapshot.

Approving a statement settles its orders, a non-HOT update that adds the new row version to every index
of `orders` it qualifies for. The index on (settlement_cycle, merchant_id) served only the lookup of
orders a cycle claimed on the order row itself (the claim before lines were the claim), which are never
settled ones: it is now partial on exactly those, so settling an order no longer writes it.

Revision ID: 0020_settlement_line_currency
Revises: 0019_settlement_claim_by_line
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_settlement_line_currency"
down_revision: str | None = "0019_settlement_claim_by_line"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("settlement_lines", sa.Column("currency", sa.String(3), nullable=True))
    op.execute(
        "UPDATE settlement_lines l SET currency = o.currency FROM orders o WHERE o.order_no = l.order_no"
    )
    op.alter_column("settlement_lines", "currency", nullable=False)
    op.create_index(
        "ix_orders_settlement_cycle_unsettled",
        "orders",
        ["settlement_cycle", "merchant_id"],
        postgresql_where=sa.text("settlement_cycle IS NOT NULL AND settled IS FALSE"),
    )
    op.drop_index("ix_orders_settlement_cycle_merchant", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_settlement_cycle_merchant", "orders", ["settlement_cycle", "merchant_id"])
    op.drop_index("ix_orders_settlement_cycle_unsettled", table_name="orders")
    op.drop_column("settlement_lines", "currency")
