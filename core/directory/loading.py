"""Loading records: the loader options of full records (one query per relation, never one
per row), records by id, every record of a select in batches, a page's records in order, and
the word condition the record lists share."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from core.paging import batches
from core.text import normalise
from models import Attribute, Contact, Location, Service, ServiceAtLocation

# Loader options for a full service record: one query per relation, never one per row.
FULL_SERVICE = (
    selectinload(Service.organization),
    selectinload(Service.program),
    selectinload(Service.phones),
    selectinload(Service.schedules),
    selectinload(Service.service_areas),
    selectinload(Service.languages),
    selectinload(Service.contacts).selectinload(Contact.phones),
    selectinload(Service.attributes).selectinload(Attribute.taxonomy_term),
    selectinload(Service.referral_contact_points),
    selectinload(Service.service_at_locations)
    .selectinload(ServiceAtLocation.location)
    .options(selectinload(Location.addresses), selectinload(Location.phones), selectinload(Location.languages)),
)


BRIEF_SERVICE = (selectinload(Service.organization), selectinload(Service.program))


FULL_LOCATION = (selectinload(Location.addresses), selectinload(Location.phones), selectinload(Location.languages))


def by_id(session: Session, entity, ids: list, options=()) -> dict:
    """The records of `entity` with these ids, by id, with their relations loaded by `options`."""
    return {record.id: record for record in session.scalars(select(entity).where(entity.id.in_(ids)).options(*options))}


def stream_entities(session: Session, stmt: Select, entity, options=()) -> Iterator[list]:
    """Every record `stmt` (an ordered select of `entity`) selects, in batches, as `stream_services`."""
    for rows in batches(session, stmt.with_only_columns(entity.id)):
        records = by_id(session, entity, [row[0] for row in rows], options)
        yield [records[row[0]] for row in rows]


def in_page_order(rows: list, records: dict) -> list:
    """The records of a page's (id, score, distance) rows, in order, each with its `distance`
    in metres when the query measured one (an attribute of a model, a key of a dict)."""
    contents = []
    for record_id, _, distance in rows:
        record = records[record_id]
        if distance is not None:
            if isinstance(record, dict):
                record["distance"] = round(distance, 1)
            else:
                record.distance = round(distance, 1)
        contents.append(record)
    return contents


def contains_words(columns, text: str | None):
    """A condition: every word of `text` (normalised as search words are) is found in one of
    `columns`, ignoring case. None when `text` has no words."""
    words = normalise(text or "")
    if not words:
        return None
    return and_(*(or_(*(func.lower(column).contains(word, autoescape=True) for column in columns)) for word in words))
