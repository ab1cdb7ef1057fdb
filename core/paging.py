"""Page-numbered slices of a query, in the shape of the HSDS `Page` envelope."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

STREAM_BATCH = 500


@dataclass
class Page:
    contents: list[Any]
    total_items: int
    page_number: int
    per_page: int
    extra: dict = field(default_factory=dict)
    # False when counting stopped at a bound (see `bounded_total`): `total_items` is then a
    # lower bound, and there is at least one page after this one.
    exact: bool = True

    @property
    def total_pages(self) -> int:
        return max(1, math.ceil(self.total_items / self.per_page)) if self.per_page else 1

    @property
    def envelope(self) -> dict:
        return {
            "total_items": self.total_items,
            "total_pages": self.total_pages,
            "page_number": self.page_number,
            "size": len(self.contents),
            "first_page": self.page_number == 1,
            "last_page": self.exact and self.page_number >= self.total_pages,
            "empty": len(self.contents) == 0,
            "total_items_exact": self.exact,
            "contents": self.contents,
            **self.extra,
        }


def bounded_total(
    count_up_to: Callable[[int | None], int], page: int, per_page: int, limit: int | None
) -> tuple[int, bool]:
    """(total_items, exact) for a page of a list that may match a large part of a big table.

    Without `limit` every match is counted. With it, counting stops after
    `max(limit, page * per_page + 1)` matches, the way search engines track totals only so
    far: a larger set is reported as that bound, not exact, which still promises a page after
    this one. `count_up_to(n)` counts the matches, stopping after `n` (all of them for None)."""
    if not limit:
        return count_up_to(None), True
    bound = max(limit, page * per_page + 1)
    counted = count_up_to(bound + 1)
    return (counted, True) if counted <= bound else (bound, False)


def count(session: Session, stmt: Select) -> int:
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def paginate(session: Session, stmt: Select, page: int, per_page: int) -> Page:
    """Run `stmt` for one page; `stmt` selects ORM entities and carries its own order."""
    total = count(session, stmt)
    rows = session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return Page(contents=list(rows), total_items=total, page_number=page, per_page=per_page)


def batches(session: Session, stmt: Select, size: int = STREAM_BATCH) -> Iterator[list[Row]]:
    """Every row of `stmt` (a select of plain columns, in its own order), `size` rows at a time
    from one open cursor (server-side on PostgreSQL), never all at once. The records a caller
    loads for a batch leave the session when it asks for the next, so a stream of a million
    rows holds one batch in memory."""
    result = session.execute(stmt.execution_options(yield_per=size))
    try:
        for rows in result.partitions():
            yield list(rows)
            session.expunge_all()
    finally:
        result.close()
