"""idempotency claims keep their business number and a lease

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: claims made before this revision have neither; a retry mints a number and takes them over.
    op.add_column("idempotency_keys", sa.Column("number", sa.String(length=48), nullable=True))
    op.add_column("idempotency_keys", sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("idempotency_keys", "leased_until")
    op.drop_column("idempotency_keys", "number")
