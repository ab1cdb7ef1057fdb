"""filter tags in the search index

Adds `service_search.tag_text` (see core/tags.py): one opaque word per filter value of a
service, so filters are answered by the full-text index. SQLite: the FTS5 table gets the column
(weight 0 in ranking). PostgreSQL: a `tags` tsvector generated from it, with a GIN index.
Every service is then reindexed, which fills the new column. Also indexes on service
(status, name) and (name, id), so a list in name order stops at its page.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TEXT = (
    "name_text",
    "program_text",
    "category_text",
    "eligibility_text",
    "area_text",
    "description_text",
    "organization_text",
)


def _sqlite_fts(fields):
    columns = ", ".join(fields)
    new = ", ".join(f"new.{f}" for f in fields)
    old = ", ".join(f"old.{f}" for f in fields)
    for trigger in ("service_search_ai", "service_search_ad", "service_search_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS service_fts")
    op.execute(
        f"CREATE VIRTUAL TABLE service_fts USING fts5({columns}, content='service_search', content_rowid='id', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    )
    op.execute(
        f"CREATE TRIGGER service_search_ai AFTER INSERT ON service_search BEGIN "
        f"INSERT INTO service_fts(rowid, {columns}) VALUES (new.id, {new}); END"
    )
    op.execute(
        f"CREATE TRIGGER service_search_ad AFTER DELETE ON service_search BEGIN "
        f"INSERT INTO service_fts(service_fts, rowid, {columns}) VALUES ('delete', old.id, {old}); END"
    )
    op.execute(
        f"CREATE TRIGGER service_search_au AFTER UPDATE ON service_search BEGIN "
        f"INSERT INTO service_fts(service_fts, rowid, {columns}) VALUES ('delete', old.id, {old}); "
        f"INSERT INTO service_fts(rowid, {columns}) VALUES (new.id, {new}); END"
    )
    op.execute("INSERT INTO service_fts(service_fts) VALUES ('rebuild')")


def _reindex_every_service():
    from sqlalchemy.orm import Session

    from core import search
    from models import Service

    session = Session(bind=op.get_bind())
    search.reindex(session, sa.select(Service.id))
    session.flush()


def upgrade():
    with op.batch_alter_table("service_search", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tag_text", sa.Text(), nullable=False, server_default=""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE service_search ADD COLUMN tags tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, tag_text)) STORED"
        )
        op.execute("CREATE INDEX ix_service_search_tags ON service_search USING gin (tags)")
    else:
        _sqlite_fts(TEXT + ("tag_text",))
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.create_index("ix_service_status_name", ["status", "name"], unique=False)
        batch_op.create_index("ix_service_name_id", ["name", "id"], unique=False)
    _reindex_every_service()


def downgrade():
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.drop_index("ix_service_status_name")
        batch_op.drop_index("ix_service_name_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_service_search_tags")
        op.execute("ALTER TABLE service_search DROP COLUMN IF EXISTS tags")
    else:
        _sqlite_fts(TEXT)
    with op.batch_alter_table("service_search", schema=None) as batch_op:
        batch_op.drop_column("tag_text")
