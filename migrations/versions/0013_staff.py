"""staff accounts of the web app

Revision ID: 0013_staff
Revises: 0011_curation
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_staff"
down_revision = "0011_curation"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=True),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["api_client.id"], name=op.f("fk_staff_user_client_id_api_client")),
        sa.ForeignKeyConstraint(["program_id"], ["program.id"], name=op.f("fk_staff_user_program_id_program")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("client_id", name=op.f("uq_staff_user_client_id")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_user_email")),
    )


def downgrade():
    op.drop_table("staff_user")
