"""settlement queue: an order with a refund in flight waits out of the queue

A claim page read and locked a page of the queue, then, in a second statement, left out the orders with
a refund in flight (a query of `refunds` per order) before writing the lines. Now an order is queued
only while a cycle may claim it: opening a refund takes the order out of the queue, and the refund's
end (SUCCEEDED or MANUAL_PAID) queues it again, so a claim page is one statement that checks nothing
but the queue.

The upgrade takes out of the queue the orders that have a refund in flight; the downgrade puts back the
settleable orders that have one and that no live line claims.

Revision ID: 0022_queue_no_refund_in_flight
Revises: 0021_settlement_queue
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_queue_no_refund_in_flight"
down_revision: str | None = "0021_settlement_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statuses as of this revision (domain.refunds.IN_FLIGHT), spelled out so the migration never changes.
_IN_FLIGHT = """
    SELECT 1 FROM refunds r WHERE r.order_no = o.order_no AND r.status IN ('PROCESSING', 'MANUAL_PENDING')
"""

# The lines that claim (or settled) their orders: of a cycle that did not fail, in no rejected statement.
_LIVE = """
    SELECT 1 FROM settlement_lines l
    JOIN settlement_cycles c ON c.id = l.cycle_id AND c.status <> 'FAILED'
    WHERE l.order_no = o.order_no
      AND NOT EXISTS (SELECT 1 FROM settlement_statements s
                      WHERE s.cycle_id = l.cycle_id AND s.merchant_id = l.merchant_id AND s.status = 'REJECTED')
"""


def upgrade() -> None:
    op.execute(f"""
        DELETE FROM settlement_queue q USING orders o
        WHERE o.order_no = q.order_no AND EXISTS ({_IN_FLIGHT})
    """)


def downgrade() -> None:
    op.execute(f"""
        INSERT INTO settlement_queue (order_no, settleable_at)
        SELECT o.order_no, o.settleable_at FROM orders o
        WHERE o.settleable AND o.settleable_at IS NOT NULL
          AND EXISTS ({_IN_FLIGHT}) AND NOT EXISTS ({_LIVE})
        ON CONFLICT (order_no) DO NOTHING
    """)
