"""merchant onboarding: categories, applications, KYC checks, reviews, onboarding state, timeline

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 04:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    categories = op.create_table(
        "merchant_categories",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("risk_level", sa.String(length=10), nullable=False),
        sa.Column("deposit_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_merchant_categories")),
    )
    # The starting categories; operators change them (and add more) through the API afterwards.
    op.bulk_insert(
        categories,
        [
            {"code": "food", "name": "Food", "risk_level": "low", "deposit_minor": 0, "currency": "CNY"},
            {
                "code": "home_services",
                "name": "Home services",
                "risk_level": "low",
                "deposit_minor": 50000,
                "currency": "CNY",
            },
            {"code": "beauty", "name": "Beauty", "risk_level": "high", "deposit_minor": 200000, "currency": "CNY"},
        ],
    )
    op.create_table(
        "merchant_applications",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("contact_name", sa.String(length=100), nullable=False),
        sa.Column("contact_phone", sa.String(length=30), nullable=False),
        sa.Column("business_licence_no", sa.String(length=30), nullable=False),
        sa.Column("legal_person_name", sa.String(length=100), nullable=False),
        sa.Column("legal_person_id_enc", sa.Text(), nullable=False),
        sa.Column("legal_person_id_last4", sa.String(length=4), nullable=False),
        sa.Column("bank_account_name", sa.String(length=200), nullable=False),
        sa.Column("bank_account_enc", sa.Text(), nullable=False),
        sa.Column("bank_account_last4", sa.String(length=4), nullable=False),
        sa.Column("bank_name", sa.String(length=100), nullable=False),
        sa.Column("submitted_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_applications")),
        sa.UniqueConstraint("merchant_id", "version", name="uq_merchant_applications_merchant_version"),
    )
    op.create_index(
        op.f("ix_merchant_applications_merchant_id"), "merchant_applications", ["merchant_id"], unique=False
    )
    op.create_table(
        "merchant_onboardings",
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("application_version", sa.Integer(), nullable=False),
        sa.Column("risk_level", sa.String(length=10), nullable=False),
        sa.Column("deposit_minor", sa.BigInteger(), nullable=False),
        sa.Column("contract_id", sa.String(length=100), nullable=True),
        sa.Column("sign_url", sa.Text(), nullable=True),
        sa.Column("contract_signed", sa.Boolean(), nullable=False),
        sa.Column("deposit_payment_no", sa.String(length=40), nullable=True),
        sa.Column("deposit_pay_url", sa.Text(), nullable=True),
        sa.Column("accounts_opened", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_merchant_onboardings_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_merchant_onboardings")),
    )
    op.create_table(
        "merchant_kyc_checks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("request_no", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_merchant_kyc_checks_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_kyc_checks")),
        sa.UniqueConstraint("request_no", name="uq_merchant_kyc_checks_request_no"),
    )
    op.create_index(op.f("ix_merchant_kyc_checks_merchant_id"), "merchant_kyc_checks", ["merchant_id"], unique=False)
    op.create_table(
        "merchant_reviews",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("stage", sa.String(length=30), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("auditor", sa.String(length=200), nullable=False),
        sa.Column("auditor_key_id", sa.BigInteger(), nullable=False),
        sa.Column("application_version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_merchant_reviews_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_reviews")),
        sa.UniqueConstraint("merchant_id", "event", name="uq_merchant_reviews_merchant_event"),
    )
    op.create_index(op.f("ix_merchant_reviews_merchant_id"), "merchant_reviews", ["merchant_id"], unique=False)
    op.create_table(
        "merchant_timeline",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("status_from", sa.String(length=30), nullable=True),
        sa.Column("status_to", sa.String(length=30), nullable=True),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_merchant_timeline_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_timeline")),
        sa.UniqueConstraint("merchant_id", "event", name="uq_merchant_timeline_merchant_event"),
    )
    op.create_index(op.f("ix_merchant_timeline_merchant_id"), "merchant_timeline", ["merchant_id"], unique=False)


def downgrade() -> None:
    for table in ("merchant_timeline", "merchant_reviews", "merchant_kyc_checks"):
        op.drop_index(op.f(f"ix_{table}_merchant_id"), table_name=table)
        op.drop_table(table)
    op.drop_table("merchant_onboardings")
    op.drop_index(op.f("ix_merchant_applications_merchant_id"), table_name="merchant_applications")
    op.drop_table("merchant_applications")
    op.drop_table("merchant_categories")
