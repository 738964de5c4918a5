"""every API key belongs to a person (maker-checker compares people)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("person", sa.String(length=100), nullable=True))
    # Older keys: the person is the key's name made into a handle, or 'unknown' when nothing is left.
    op.execute(
        """
        UPDATE api_keys
        SET person = COALESCE(
            NULLIF(left(regexp_replace(lower(trim(name)), '[^a-z0-9._@+-]+', '-', 'g'), 100), ''), 'unknown'
        )
        """
    )
    op.alter_column("api_keys", "person", nullable=False)
    op.create_index(op.f("ix_api_keys_person"), "api_keys", ["person"])


def downgrade() -> None:
    op.drop_index(op.f("ix_api_keys_person"), table_name="api_keys")
    op.drop_column("api_keys", "person")
