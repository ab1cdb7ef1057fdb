"""directory data version

One row holding a token that every committed directory write replaces (core/directory_version.py),
so the HTTP and result caches of the public directory are never stale after a write. Starts
with a random token: a database built again never repeats the tags of an earlier one.

Revision ID: 0005
Revises: 0004
"""

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "directory_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_version")),
    )
    op.bulk_insert(table, [{"id": 1, "tag": secrets.token_hex(16), "changed_at": datetime.now(UTC)}])


def downgrade():
    op.drop_table("directory_version")
