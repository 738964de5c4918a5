"""providers: who serves which categories, for which merchant, online or not, and the one order each holds

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("service_providers", sa.Column("merchant_id", sa.String(64), sa.ForeignKey("merchants.id")))
    op.add_column(
        "service_providers",
        sa.Column("categories", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'::varchar[]")),
    )
    op.add_column("service_providers", sa.Column("online", sa.Boolean(), nullable=False, server_default=sa.false()))
    # The one order a provider is serving (offered, accepted, in service): a provider never holds two.
    op.add_column("service_providers", sa.Column("current_order_no", sa.String(40), unique=True))
    op.add_column("service_providers", sa.Column("phone_enc", sa.Text()))
    op.add_column("service_providers", sa.Column("phone_last4", sa.String(4)))
    op.add_column("service_providers", sa.Column("id_no_enc", sa.Text()))
    op.add_column("service_providers", sa.Column("id_no_last4", sa.String(4)))
    op.add_column(
        "service_providers",
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_service_providers_merchant", "service_providers", ["merchant_id"])
    # Providers from before categories existed served every order: they keep serving every category
    # known so far, and stay online if they were active.
    op.execute(
        """
        UPDATE service_providers SET online = active,
               categories = ARRAY(SELECT DISTINCT category_id FROM order_items
                                  UNION SELECT code FROM merchant_categories)::varchar[]
        """
    )


def downgrade() -> None:
    op.drop_index("ix_service_providers_merchant", table_name="service_providers")
    for column in (
        "created_at",
        "id_no_last4",
        "id_no_enc",
        "phone_last4",
        "phone_enc",
        "current_order_no",
        "online",
        "categories",
        "merchant_id",
    ):
        op.drop_column("service_providers", column)
