"""settlement claim by line: drop the unused index on orders.settleable

A cycle's claim is now its settlement line (the order row is written once, when its statement is
approved). Every write of an order that is not HOT inserts into each of the table's indexes; the
boolean index on `settleable` serves no query (the settlement queue has its own partial index, whose
predicate includes `settleable`), so it only made those writes dearer.

Revision ID: 0019_settlement_claim_by_line
Revises: 0018
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_settlement_claim_by_line"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_orders_settleable", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_settleable", "orders", ["settleable"], unique=False)
