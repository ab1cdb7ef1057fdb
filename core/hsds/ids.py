"""What an import remembers between batches, kept by the database rather than in memory.

The ids it accepted (which later rows may name), the rows it changed and the services it must
reindex live in a temporary table of the connection (SQLite keeps it in a temporary file
behind a small page cache, PostgreSQL in temp_buffers and then on disk), emptied when an
import starts and dropped with its transaction, and are looked up a batch at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

from sqlalchemy import Column, MetaData, SmallInteger, Table, Uuid, delete, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql import Select

from core.hsds.profile import TABLES
from core.hsds.writer import BATCH_SIZE, chunks

# `kind` says what an id is (see IdStore).
IMPORT_IDS = Table(
    "hsds_import_id",
    MetaData(),
    Column("kind", SmallInteger, primary_key=True),
    Column("id", Uuid, primary_key=True),
    Column("owner", Uuid),  # of an accepted program: its organization
    prefixes=["TEMPORARY"],
    sqlite_with_rowid=False,
    postgresql_on_commit="DROP",
)


def key(value: uuid.UUID) -> int:
    """What the import remembers in memory of an id: its first 64 bits (a collision between two
    different ids of one table has odds of about n / 2**60)."""
    return value.int >> 64


class IdStore:
    """The ids an import accepted, table by table, and the services it must reindex."""

    ACCEPTED = {spec.name: index for index, spec in enumerate(TABLES)}  # a row of that table was accepted
    REINDEX = 100  # a service to reindex (written, or a row of it written)
    CHANGED = {name: 200 + index for name, index in ACCEPTED.items()}  # an existing row was updated
    FOUND = 300  # + n: services reached through updated rows (see Importer.finish)

    def __init__(self, session: Session) -> None:
        self.session = session
        session.execute(CreateTable(IMPORT_IDS, if_not_exists=True))
        session.execute(delete(IMPORT_IDS))
        dialect = session.get_bind().dialect.name
        self._insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
            IMPORT_IDS
        ).on_conflict_do_nothing()

    def add(self, kind: int, ids: Iterable[uuid.UUID | None], owners: dict[uuid.UUID, uuid.UUID] | None = None) -> None:
        """Hold `ids` under `kind` (with each one's owner, when given)."""
        values = {value for value in ids if value is not None}
        rows = [{"kind": kind, "id": value, "owner": (owners or {}).get(value)} for value in values]
        for chunk in chunks(rows, BATCH_SIZE):
            self.session.execute(self._insert, chunk)

    def known(self, kinds: Iterable[int], ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Which of `ids` are held under one of `kinds`."""
        kinds = list(kinds)
        return {
            found
            for chunk in chunks(ids)
            for found in self.session.scalars(
                select(IMPORT_IDS.c.id).where(IMPORT_IDS.c.kind.in_(kinds), IMPORT_IDS.c.id.in_(chunk))
            )
        }

    def owners(self, kind: int, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The owners of those of `ids` held under `kind`."""
        found: dict[uuid.UUID, uuid.UUID] = {}
        for chunk in chunks(ids):
            found.update(
                self.session.execute(
                    select(IMPORT_IDS.c.id, IMPORT_IDS.c.owner).where(
                        IMPORT_IDS.c.kind == kind, IMPORT_IDS.c.id.in_(chunk)
                    )
                ).all()
            )
        return found

    def of_kind(self, kinds: Iterable[int]) -> Select:
        """A query of the ids held under `kinds`, to use inside another query."""
        return select(IMPORT_IDS.c.id).where(IMPORT_IDS.c.kind.in_(list(kinds)))

    def pages(self, kinds: Iterable[int], size: int = BATCH_SIZE) -> Iterator[list[uuid.UUID]]:
        """The distinct ids held under `kinds`, in order, `size` at a time."""
        kinds = list(kinds)
        last = None
        while True:
            query = select(IMPORT_IDS.c.id).distinct().where(IMPORT_IDS.c.kind.in_(kinds))
            if last is not None:
                query = query.where(IMPORT_IDS.c.id > last)
            page = list(self.session.scalars(query.order_by(IMPORT_IDS.c.id).limit(size)))
            if not page:
                return
            yield page
            last = page[-1]

    def add_found(self, kind: int, query: Select) -> None:
        """Hold under `kind` the ids a query of one column finds (in the database, not here)."""
        found = query.subquery().c[0]
        self.session.execute(
            insert(IMPORT_IDS).from_select(
                ["kind", "id"], select(literal(kind, SmallInteger), found).where(found.is_not(None)).distinct()
            )
        )
