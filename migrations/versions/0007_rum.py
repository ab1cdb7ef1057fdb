"""rank searches inside a RUM index on PostgreSQL, when the rum extension is available

A RUM index on `service_search.document` stores each word's positions and weights, so a page
by relevance (`ORDER BY document <=> query LIMIT k`) is ranked from the index without reading
a table row per match (ts_rank over the GIN index's matches reads every matching row).
Created only where the server has the extension (Debian: postgresql-15-rum; `make pg-rum`);
elsewhere nothing changes and core.search ranks with ts_rank. SQLite: nothing.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "ix_service_search_document_rum"


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'rum'").first()
    if available is None:
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS rum")
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON service_search USING rum (document rum_tsvector_ops)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.execute("DROP EXTENSION IF EXISTS rum")
