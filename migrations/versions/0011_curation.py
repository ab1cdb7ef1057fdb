"""Curation: verification, capacity, write history, client e-mail

Revision ID: 0011_curation
Revises: 0010_privacy
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_curation"
down_revision = "0010_privacy"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("service") as batch_op:
        batch_op.add_column(sa.Column("assured_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("assurer_email", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("capacity_status", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("capacity_available", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("capacity_maximum", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("capacity_unit", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("capacity_wait_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("capacity_description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("capacity_updated", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_service_assured_date", ["assured_date"])
    with op.batch_alter_table("api_client") as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
    op.create_table(
        "record_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_type", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.Uuid(), sa.ForeignKey("api_client.id"), nullable=True),
        sa.Column("client_name", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_record_history_record", "record_history", ["record_type", "record_id", "at"])


def downgrade():
    op.drop_index("ix_record_history_record", table_name="record_history")
    op.drop_table("record_history")
    with op.batch_alter_table("api_client") as batch_op:
        batch_op.drop_column("email")
    with op.batch_alter_table("service") as batch_op:
        batch_op.drop_index("ix_service_assured_date")
        for name in (
            "capacity_updated",
            "capacity_description",
            "capacity_wait_days",
            "capacity_unit",
            "capacity_maximum",
            "capacity_available",
            "capacity_status",
            "assurer_email",
            "assured_date",
        ):
            batch_op.drop_column(name)
