"""discrepancy flows: what was done about each discrepancy, by whom, and its history

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("recon_discrepancies", sa.Column("action", sa.String(30), nullable=True))
    op.add_column("recon_discrepancies", sa.Column("note", sa.Text(), nullable=False, server_default=""))
    op.add_column("recon_discrepancies", sa.Column("decided_by", sa.String(200), nullable=True))
    # Each step the discrepancy's flow took ({at, status, action, note, by}), appended, never rewritten.
    op.add_column("recon_discrepancies", sa.Column("history", JSONB(), nullable=False, server_default="[]"))
    op.add_column("recon_discrepancies", sa.Column("ledger_entry_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for column in ("ledger_entry_id", "history", "decided_by", "note", "action"):
        op.drop_column("recon_discrepancies", column)
