"""settlement queue: a narrow table of what the next cycle claims; settling writes no order row

A cycle claimed by walking a partial index of the wide `orders` table, and approving a statement
settled its orders with an update of each order row, which is not HOT and so rewrote every index of
`orders` (about 18 buffers an order). Now:

- `settlement_queue` holds the orders that are settleable and claimed by no live line. An order enters
  it in the transaction that makes it settleable, a cycle's claim deletes it (in the statement that
  writes its line), and a rejected statement or a failed cycle puts its orders back.
- "settled" is derived: an order is settled when its line is in an approved statement (which refunds
  after settlement already read for the settled split), and the settling cycle is that line's cycle.
  `orders.settled` and `orders.settlement_cycle` are dropped with the two partial indexes that served
  the old claim.

The queue is filled with every settleable order no live line claims and not settled. Every settled
order must have its line in an approved statement (refunds after settlement need it); the upgrade stops
if one has not, rather than forget that the order was settled.

Revision ID: 0021_settlement_queue
Revises: 0020_settlement_line_currency
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_settlement_queue"
down_revision: str | None = "0020_settlement_line_currency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The lines that claim (or settled) their orders: of a cycle that did not fail, in no rejected statement.
_LIVE = """
    SELECT l.order_no, l.cycle_id FROM settlement_lines l
    JOIN settlement_cycles c ON c.id = l.cycle_id AND c.status <> 'FAILED'
    WHERE NOT EXISTS (SELECT 1 FROM settlement_statements s
                      WHERE s.cycle_id = l.cycle_id AND s.merchant_id = l.merchant_id AND s.status = 'REJECTED')
"""

_APPROVED_LINE = """
    SELECT l.order_no, l.cycle_id FROM settlement_lines l
    JOIN settlement_statements s ON s.cycle_id = l.cycle_id AND s.merchant_id = l.merchant_id
                                AND s.status = 'APPROVED'
"""


def upgrade() -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM orders o WHERE o.settled
                       AND NOT EXISTS (SELECT 1 FROM ({_APPROVED_LINE}) a WHERE a.order_no = o.order_no)) THEN
                RAISE EXCEPTION 'settled orders without a line in an approved statement';
            END IF;
        END $$
    """)
    op.create_table(
        "settlement_queue",
        sa.Column("order_no", sa.String(40), primary_key=True),
        sa.Column("settleable_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_settlement_queue_at", "settlement_queue", ["settleable_at", "order_no"])
    op.execute(f"""
        INSERT INTO settlement_queue (order_no, settleable_at)
        SELECT o.order_no, o.settleable_at FROM orders o
        WHERE o.settleable AND NOT o.settled AND o.settleable_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM ({_LIVE}) live WHERE live.order_no = o.order_no)
    """)
    op.drop_index("ix_orders_settlement_queue", table_name="orders")
    op.drop_index("ix_orders_settlement_cycle_unsettled", table_name="orders")
    op.drop_column("orders", "settlement_cycle")
    op.drop_column("orders", "settled")


def downgrade() -> None:
    op.add_column("orders", sa.Column("settled", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("orders", sa.Column("settlement_cycle", sa.String(40), nullable=True))
    op.alter_column("orders", "settled", server_default=None)
    # Settled orders, and the orders live lines claim, carry their cycle.
    op.execute(f"""
        UPDATE orders o SET settled = true, settlement_cycle = a.cycle_id
        FROM ({_APPROVED_LINE}) a WHERE a.order_no = o.order_no
    """)
    op.execute(f"""
        UPDATE orders o SET settlement_cycle = live.cycle_id
        FROM ({_LIVE}) live
        WHERE live.order_no = o.order_no AND NOT o.settled
    """)
    op.create_index(
        "ix_orders_settlement_cycle_unsettled",
        "orders",
        ["settlement_cycle", "merchant_id"],
        postgresql_where=sa.text("settlement_cycle IS NOT NULL AND settled IS FALSE"),
    )
    op.create_index(
        "ix_orders_settlement_queue",
        "orders",
        ["settleable_at", "order_no"],
        postgresql_where=sa.text("settleable AND NOT settled AND settlement_cycle IS NULL"),
    )
    op.drop_index("ix_settlement_queue_at", table_name="settlement_queue")
    op.drop_table("settlement_queue")
