"""refunds: what a refund after settlement took from the merchant's available balance

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written in the transaction that posts the refund, so the merchant's available balance can be checked
    # against a business record (settled − withdrawn − clawed back) and not only against the postings.
    op.add_column("refunds", sa.Column("from_available_minor", sa.BigInteger(), nullable=True))
    # Refunds after settlement made before this column existed: their posting is the only record of the
    # split, so it is copied from there once (a credit back to available is a negative take).
    op.execute(
        """
        UPDATE refunds r SET from_available_minor = coalesce((
            SELECT sum(CASE l.side WHEN 'D' THEN l.amount_minor ELSE -l.amount_minor END)
            FROM journal_lines l JOIN ledger_accounts a ON a.id = l.account_id
            WHERE l.entry_id = r.ledger_entry_id
              AND a.code = concat('merchant', chr(58), r.merchant_id, chr(58), 'available')
        ), 0)
        FROM journal_entries e
        WHERE e.id = r.ledger_entry_id
          AND e.tx_code IN ('REFUND_AFTER_SETTLEMENT', 'MANUAL_REFUND_AFTER_SETTLEMENT')
        """
    )


def downgrade() -> None:
    op.drop_column("refunds", "from_available_minor")
