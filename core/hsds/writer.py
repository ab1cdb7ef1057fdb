"""The batched writer both bulk paths share: the HSDS import (`core.hsds.importer`) and the
loader of new records the seed and the benchmark use (`core.bulk`).

Everything here works a batch at a time: ids are looked up `IDS_PER_QUERY` to a query (well
under SQLite's limit on bound parameters), new rows go in with one executemany `INSERT` per
table, changed rows with one executemany `UPDATE`. Rows are full rows of their table
(`full_row`): a column a record leaves out is written as None, or as its default when it has
one and may not be null.

The caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import RowMapping, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

# Rows read, checked and written together; ids kept or paged together.
BATCH_SIZE = 1000
# Ids per `IN (...)` query: well under SQLite's limit on bound parameters.
IDS_PER_QUERY = 500


def table_of(model: type) -> Table:
    """A model's table (SQLAlchemy types `__table__` as any FROM clause; a model's is a Table)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def chunks(values: Iterable[Any], size: int = IDS_PER_QUERY) -> Iterator[list[Any]]:
    """The values, `size` at a time."""
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def existing_ids(session: Session, table: Table, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `ids` the table holds."""
    return {
        found for chunk in chunks(ids) for found in session.scalars(select(table.c.id).where(table.c.id.in_(chunk)))
    }


def existing_rows(session: Session, table: Table, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, RowMapping]:
    """The stored rows of `ids` (those the table holds), by id."""
    found: dict[uuid.UUID, RowMapping] = {}
    for chunk in chunks(ids):
        found.update((row.id, row._mapping) for row in session.execute(select(table).where(table.c.id.in_(chunk))))
    return found


def full_row(table: Table, data: Mapping[str, Any], **fixed: Any) -> dict[str, Any]:
    """A full row of `table` from a checked record: `fixed` (parent ids, last_modified) over
    all, then the record's values for the table's columns; a column left empty is None, or
    its default when it has a plain one and may not be null."""
    row: dict[str, Any] = {}
    for column in table.columns:
        key = column.key
        value = fixed[key] if key in fixed else data.get(key)
        if value is None and not column.nullable and isinstance(column.default, ScalarElementColumnDefault):
            value = column.default.arg
        row[key] = value
    return row


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """One executemany INSERT of full rows (nothing when there are none)."""
    if rows:
        session.execute(insert(table), list(rows))


def insert_tables(session: Session, rows: Mapping[Table, Sequence[Mapping[str, Any]]], order: Iterable[type]) -> None:
    """One executemany INSERT per table, in the order of the models given (parents first)."""
    for model in order:
        table = table_of(model)
        insert_rows(session, table, rows.get(table, ()))


def update_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """One executemany UPDATE of full rows, each matched by its id."""
    if not rows:
        return
    columns = [column.key for column in table.columns if column.key != "id"]
    statement = (
        update(table).where(table.c.id == bindparam("old_id")).values({key: bindparam(f"new_{key}") for key in columns})
    )
    session.execute(statement, [{"old_id": row["id"], **{f"new_{key}": row[key] for key in columns}} for row in rows])


# --------------------------------------------------------------------------- upserts


@dataclass
class Upsert:
    """What upserting one batch did: the rows inserted, the rows updated (with what was stored
    before), how many were already as given, and which of the rows given were written
    (their index, and whether the row is new)."""

    inserted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[tuple[dict[str, Any], RowMapping]] = field(default_factory=list)
    unchanged: int = 0
    written: list[tuple[int, bool]] = field(default_factory=list)


def upsert_rows(
    session: Session, table: Table, rows: Sequence[tuple[Mapping[str, Any], Container[str]]], now: datetime
) -> Upsert:
    """Insert or update rows by id. Each row is (its values, the fields its source carried).

    A stored row keeps the columns the source does not carry (an HSDS file need not have this
    directory's own columns: a program's slug, accepts_referrals, ...); a row equal to what is
    stored is left alone. On a table with `last_modified`, a row written takes the one given,
    or `now` when it is new or differs from what is stored.
    """
    stored = existing_rows(session, table, [values["id"] for values, _ in rows])
    stamped = "last_modified" in table.c
    done = Upsert()
    for index, (values, given) in enumerate(rows):
        row = full_row(table, values)
        before = stored.get(values["id"])
        if before is None:
            if stamped:
                row["last_modified"] = values.get("last_modified") or now
            done.inserted.append(row)
        else:
            row = _merged(row, given, before)
            if not _differs(row, before, values.get("last_modified") if stamped else None, now, stamped):
                done.unchanged += 1
                continue
            done.updated.append((row, before))
        done.written.append((index, before is None))
    insert_rows(session, table, done.inserted)
    update_rows(session, table, [row for row, _ in done.updated])
    return done


def _merged(row: dict[str, Any], given: Container[str], before: RowMapping) -> dict[str, Any]:
    """The row to store over `before`: what the source gave, what is stored for the rest."""
    return {key: value if key == "id" or key in given else before[key] for key, value in row.items()}


def _differs(row: dict[str, Any], before: RowMapping, given_stamp: Any, now: datetime, stamped: bool) -> bool:
    """Whether `row` changes what is stored; stamps its `last_modified` (on a stamped table)."""
    differs = any(row[key] != before[key] for key in row if key not in ("id", "last_modified"))
    if stamped:
        row["last_modified"] = given_stamp or (now if differs else before["last_modified"])
        differs = differs or row["last_modified"] != before["last_modified"]
    return differs
