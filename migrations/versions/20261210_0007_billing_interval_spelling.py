"""One spelling of the billing interval: ``monthly`` / ``yearly``, as the API already speaks.

``user_subscriptions.billing_interval`` held Stripe's ``month`` / ``year`` while every request
body (checkout, onboarding) says ``monthly`` / ``yearly``; the column now holds the API's words
and Stripe's are translated where Stripe objects are read. Widening a varchar does not rewrite
the table; the UPDATE touches only subscribed users' rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_user_subscriptions_billing_interval_allowed"


def _respell(old: tuple[str, str], new: tuple[str, str], length: int) -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_constraint(op.f(CONSTRAINT), "user_subscriptions", type_="check")
    if length > 5:
        op.alter_column("user_subscriptions", "billing_interval", type_=sa.String(length))
    op.execute(
        "UPDATE user_subscriptions SET billing_interval = CASE billing_interval"
        f" WHEN '{old[0]}' THEN '{new[0]}' WHEN '{old[1]}' THEN '{new[1]}' END"
        " WHERE billing_interval IS NOT NULL"
    )
    if length <= 5:
        op.alter_column("user_subscriptions", "billing_interval", type_=sa.String(length))
    op.create_check_constraint(
        op.f(CONSTRAINT),
        "user_subscriptions",
        f"billing_interval IS NULL OR billing_interval IN ('{new[0]}', '{new[1]}')",
    )


def upgrade() -> None:
    _respell(("month", "year"), ("monthly", "yearly"), 7)


def downgrade() -> None:
    _respell(("monthly", "yearly"), ("month", "year"), 5)
