"""search change log: which services' search rows changed, in commit order

`search_change` gets one row (an increasing `seq`, the service id) every time a row of
`service_search` is inserted, updated or deleted, written by a trigger in the same transaction
as the change, whatever wrote it (core.search, core.bulk, a cascade from a deleted service,
raw SQL). Each process's in-memory ranking index (core.ranking, SEARCH_RANKER=tantivy) applies
the changes after the last `seq` it saw before it answers a search. A row with no service id
asks every process to rebuild its index (written by `flask search reindex`).

Revision ID: 0014_search_change
Revises: 0013_staff
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_search_change"
down_revision = "0013_staff"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "search_change",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_search_change")),
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION log_search_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'DELETE' THEN INSERT INTO search_change (service_id) VALUES (OLD.service_id); "
            "ELSE INSERT INTO search_change (service_id) VALUES (NEW.service_id); END IF; "
            "RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER service_search_change AFTER INSERT OR UPDATE OR DELETE ON service_search "
            "FOR EACH ROW EXECUTE FUNCTION log_search_change()"
        )
    else:
        for name, event, row in (("ai", "INSERT", "new"), ("au", "UPDATE", "new"), ("ad", "DELETE", "old")):
            op.execute(
                f"CREATE TRIGGER service_search_change_{name} AFTER {event} ON service_search BEGIN "
                f"INSERT INTO search_change (service_id) VALUES ({row}.service_id); END"
            )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS service_search_change ON service_search")
        op.execute("DROP FUNCTION IF EXISTS log_search_change()")
    else:
        for name in ("ai", "au", "ad"):
            op.execute(f"DROP TRIGGER IF EXISTS service_search_change_{name}")
    op.drop_table("search_change")
