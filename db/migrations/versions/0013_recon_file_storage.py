"""recon: statement files stored uncompressed, staging indexed for the per-run match

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The match reads a kept file a few MB at a time (substring). On a compressed value every such read
    # decompresses from the start of the file, so a large bill would cost quadratic time; stored
    # uncompressed (out of line, EXTERNAL), each read fetches only its own TOAST chunks. Files kept
    # before this revision stay compressed and are read the same way, only slower.
    op.execute("ALTER TABLE recon_files ALTER COLUMN content SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE recon_files ALTER COLUMN content SET STORAGE EXTENDED")
