"""recon: runs, raw statement files (immutable), staged statement lines, discrepancies

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A statement file is evidence: stored once per content hash and never changed or removed, so a
    # discrepancy can always be traced to the very bytes the party sent (refuse_change() is 0001's).
    op.create_table(
        "recon_files",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("bill_date", sa.Date(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.execute(
        "CREATE TRIGGER recon_files_append_only BEFORE UPDATE OR DELETE ON recon_files "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
    )
    op.create_table(
        "recon_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("flow", sa.String(120), nullable=False, unique=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("bill_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("file_sha256", sa.String(64), sa.ForeignKey("recon_files.sha256"), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("counts", JSONB(), nullable=False, server_default="{}"),
        sa.Column("statement_totals", JSONB(), nullable=False, server_default="{}"),
        sa.Column("platform_totals", JSONB(), nullable=False, server_default="{}"),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_recon_runs_source_bill_date", "recon_runs", ["source", "bill_date"])
    # Staging: a run's parsed lines, loaded with COPY and matched set-based; no constraints beyond the
    # run's index, so the load is as fast as the disk allows.
    op.create_table(
        "recon_statement_lines",
        sa.Column("run_id", sa.BigInteger(), primary_key=True),
        sa.Column("line_no", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("our_no", sa.String(64), nullable=False),
        sa.Column("order_ref", sa.String(64), nullable=True),
        sa.Column("party_no", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_recon_statement_lines_run_id", "recon_statement_lines", ["run_id", "kind", "our_no"])
    op.create_table(
        "recon_discrepancies",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("recon_runs.id"), nullable=False, index=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("bill_date", sa.Date(), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("our_no", sa.String(64), nullable=False),
        sa.Column("statement_minor", sa.BigInteger(), nullable=True),
        sa.Column("platform_minor", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("resolved_by_run_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        # A re-run of a day finds the same differences again: they must not be raised twice.
        sa.UniqueConstraint("source", "type", "our_no", name="uq_recon_discrepancies_source_type_our_no"),
    )
    op.create_index("ix_recon_discrepancies_type_status", "recon_discrepancies", ["type", "status"])


def downgrade() -> None:
    op.drop_table("recon_discrepancies")
    op.drop_table("recon_statement_lines")
    op.drop_table("recon_runs")
    op.execute("DROP TRIGGER IF EXISTS recon_files_append_only ON recon_files")
    op.drop_table("recon_files")
