"""The directory's data version: a token that changes with every committed directory write.

Caches of directory reads (the HTTP ETags and the server-side result cache, api/caching.py) key
on it, so a write through any process, instance or script makes them miss at once. It lives in
the one-row `directory_version` table and is changed in the same transaction as the write:

- every Session (Flask's, the CLI's, bench/generate.py's) is watched; a commit whose
  transaction added, changed or deleted a directory record through the ORM (`core.curation`)
  or ran an INSERT, UPDATE or DELETE construct (`insert()`, `update()`, `delete()`) on a
  directory table through `Session.execute` (`core.bulk`, the search index) sets a new random
  token as it commits, after its last flush (the version row is locked last);
- a directory table is any mapped table outside `models/referrals.py` (referrals, API
  clients, audit, webhooks): writing those never changes a public read.

Writes in raw SQL (`text()`, on a connection or through a session, or psql) are not noticed
and must call `bump(session)` themselves in their transaction. Importing `core` installs the listeners.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import cast

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event, insert, inspect, select, update
from sqlalchemy.orm import ORMExecuteState, Session, scoped_session
from sqlalchemy.pool import NullPool

from models import Base, DirectoryVersion, utcnow

ROW_ID = 1
WRITTEN = "occh_directory_written"  # Session.info flag: this transaction wrote the directory
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Version:
    tag: str
    changed_at: datetime


_TABLE = DirectoryVersion.__table__
_CURRENT = select(_TABLE.c.tag, _TABLE.c.changed_at).where(_TABLE.c.id == ROW_ID)


def current(session: Session | Connection) -> Version:
    """The committed version as this session or connection sees it (one primary-key read;
    a Connection skips the ORM, for the hot path of every public read)."""
    row = session.execute(_CURRENT).first()
    return Version(row.tag, row.changed_at) if row else Version("initial", NEVER)


_SEEN = "occh_directory_version_seen"  # Session.info: (transaction, Version) read in it


def seen(session: Session | scoped_session) -> Version:
    """The version as the session's current transaction sees it, read once per transaction:
    the ranking index and the search's word caches (core.ranking, core.search) ask for it
    several times while they answer one request. A transaction that writes bumps the version
    at its commit, and the next transaction reads it again."""
    real = session() if isinstance(session, scoped_session) else session
    transaction = real.get_transaction()
    memo = real.info.get(_SEEN)
    if transaction is not None and memo is not None and memo[0] is transaction:
        return memo[1]
    version = current(real)  # begins a transaction when none is open
    real.info[_SEEN] = (real.get_transaction(), version)
    return version


class VersionReader:
    """Reads the version on a database connection each thread keeps for this one query: no
    pool checkout, no liveness ping, no ORM, so a revalidation costs one round trip. The
    connection is in autocommit (it holds no transaction between reads); when a read fails it
    is dropped and the read is made once more through `engine`'s pool, whose error (the
    database is down) the caller sees."""

    SQL = f"SELECT tag, changed_at FROM {DirectoryVersion.__tablename__} WHERE id = {ROW_ID}"

    def __init__(self, engine: Engine, connect_args: dict | None = None) -> None:
        self.engine = engine
        # Connections of their own, outside the pool of the views, opened with the same
        # arguments (a connect timeout) as the views' connections.
        self.direct = create_engine(engine.url, poolclass=NullPool, connect_args=connect_args or {})
        self.local = threading.local()

    def _connection(self):
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.direct.raw_connection()
            if self.direct.dialect.name == "postgresql":
                assert connection.driver_connection is not None  # just opened
                connection.driver_connection.autocommit = True
            self.local.connection = connection
        return connection

    def read(self) -> Version:
        try:
            cursor = self._connection().cursor()
            try:
                cursor.execute(self.SQL)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except Exception:
            self.close()
            with self.engine.connect() as connection:
                return current(connection)
        if row is None:
            return Version("initial", NEVER)
        return Version(row[0], _as_utc(row[1]))

    def close(self) -> None:
        connection = getattr(self.local, "connection", None)
        self.local.connection = None
        if connection is not None:
            try:
                connection.invalidate()
            except Exception:  # already gone
                pass


def _as_utc(value) -> datetime:
    """A timestamp as the driver returns it (SQLite: text in UTC; PostgreSQL: aware)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def bump(session: Session) -> Version:
    """Give the directory a new version, in the session's transaction."""
    version = Version(secrets.token_hex(16), utcnow())
    table = DirectoryVersion.__table__
    values = {"tag": version.tag, "changed_at": version.changed_at}
    # An UPDATE's result is a CursorResult, which counts the rows (Session.execute is typed Result).
    updated = cast(CursorResult, session.execute(update(table).where(table.c.id == ROW_ID).values(**values)))
    if updated.rowcount == 0:
        session.execute(insert(table).values(id=ROW_ID, **values))
    return version


def private_tables() -> frozenset[str]:
    """Tables whose writes leave every public directory read unchanged."""
    names = {
        mapper.class_.__table__.name
        for mapper in Base.registry.mappers
        if mapper.class_.__module__ == "models.referrals"
    }
    # hsds_import_id: the ids an import keeps in a temporary table of its own (core.hsds.ids).
    return frozenset(names | {DirectoryVersion.__tablename__, "hsds_import_id"})


PRIVATE_TABLES = private_tables()


def is_directory_table(name: str | None) -> bool:
    return name is None or name not in PRIVATE_TABLES


def _pending_directory_change(session: Session) -> bool:
    """Whether the session's unflushed changes touch a directory table."""
    for obj in chain(session.new, session.deleted):
        if is_directory_table(inspect(obj).mapper.local_table.name):
            return True
    return any(
        is_directory_table(inspect(obj).mapper.local_table.name) and session.is_modified(obj, include_collections=False)
        for obj in session.dirty
    )


@event.listens_for(Session, "before_flush")
def _notice_flush(session: Session, flush_context, instances) -> None:
    if not session.info.get(WRITTEN) and _pending_directory_change(session):
        session.info[WRITTEN] = True


@event.listens_for(Session, "do_orm_execute")
def _notice_statement(state: ORMExecuteState) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and not state.session.info.get(WRITTEN):
        table = getattr(state.statement, "table", None)
        if is_directory_table(getattr(table, "name", None)):
            state.session.info[WRITTEN] = True


@event.listens_for(Session, "before_commit")
def _bump_before_commit(session: Session) -> None:
    # Flush first, then bump: the version row is locked last, after the rows written, in every
    # transaction, so two writers cannot wait on each other's locks.
    session.flush()
    if session.info.pop(WRITTEN, False):
        bump(session)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(WRITTEN, None)
