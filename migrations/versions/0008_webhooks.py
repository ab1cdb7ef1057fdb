"""webhook safety: disabled subscriptions and attempt outcomes

A subscription that has failed every attempt for a day is disabled (`failing_since`,
`disabled_at`, `disabled_reason`); each attempt records its outcome (delivered, http_status,
timeout, unreachable, address_refused). The error text of earlier attempts named exception
classes (`ConnectionRefusedError`): it is replaced by the fixed sentence of its outcome.

Revision ID: 0008_webhooks
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0008_webhooks"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("webhook_subscription") as batch_op:
        batch_op.add_column(sa.Column("failing_since", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("disabled_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("disabled_reason", sa.String(length=255), nullable=True))
    with op.batch_alter_table("webhook_delivery_attempt") as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE webhook_delivery_attempt SET outcome = 'delivered', error = NULL "
        "WHERE status_code >= 200 AND status_code < 300"
    )
    op.execute(
        "UPDATE webhook_delivery_attempt SET outcome = 'http_status', error = NULL "
        "WHERE status_code IS NOT NULL AND outcome IS NULL"
    )
    op.execute(
        "UPDATE webhook_delivery_attempt SET outcome = 'unreachable', error = 'The receiver could not be reached.' "
        "WHERE status_code IS NULL"
    )


def downgrade():
    with op.batch_alter_table("webhook_delivery_attempt") as batch_op:
        batch_op.drop_column("outcome")
    with op.batch_alter_table("webhook_subscription") as batch_op:
        batch_op.drop_column("disabled_reason")
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("failing_since")
