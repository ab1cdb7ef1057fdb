"""schedule.attending_type is free text

HSDS 3.0 describes `attending_type` as free text ("You can attend this service in-person or
remotely via video conferencing" in its own examples, 72 characters); it was 64 characters.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("schedule") as batch_op:
        batch_op.alter_column(
            "attending_type", existing_type=sa.String(length=64), type_=sa.Text(), existing_nullable=True
        )


def downgrade():
    with op.batch_alter_table("schedule") as batch_op:
        batch_op.alter_column(
            "attending_type", existing_type=sa.Text(), type_=sa.String(length=64), existing_nullable=True
        )
