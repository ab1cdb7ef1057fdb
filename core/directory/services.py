"""Services and services at locations: pages, streams and single records. Brief service
records are plain dicts read in one query (`service_rows`), full ones the nested models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, selectinload

from core import search
from core.directory.facets import facet_counts
from core.directory.guidance import search_guidance
from core.directory.loading import FULL_LOCATION, FULL_SERVICE, by_id, in_page_order
from core.directory.query import ServiceQuery, ordered_rows, page_rows, page_total, plan
from core.errors import NotFound
from core.paging import STREAM_BATCH, Page, batches
from models import Contact, Organization, Program, Service, ServiceAtLocation


def list_services(
    session: Session,
    query: ServiceQuery,
    page: int,
    per_page: int,
    full: bool,
    minimal: bool = False,
    count_limit: int | None = None,
) -> Page:
    """A page of services. Brief records are plain dicts read in one query (`service_rows`);
    full records are the nested models; minimal records are each service's id and
    `last_modified` alone. The total is exact up to `count_limit` matches (see
    core.paging.bounded_total)."""
    rows = page_rows(session, query, page, per_page)
    contents = in_page_order(rows, _service_records(session, [row[0] for row in rows], full, minimal))
    total, exact = page_total(session, query, page, per_page, count_limit)
    result = Page(contents=contents, total_items=total, page_number=page, per_page=per_page, exact=exact)
    if query.facets:
        result.extra["facets"] = facet_counts(session, query)
    result.extra.update(search_guidance(session, query, total))
    return result


def stream_services(
    session: Session, query: ServiceQuery, full: bool, minimal: bool = False, size: int = STREAM_BATCH
) -> Iterator[list]:
    """Every service the query matches, in the list's order, in batches of `size` records (the
    shapes of `list_services`) read from one open cursor: memory stays flat however many there are."""
    found, conditions = plan(session, query)
    ranked = None  # the pages' order when a ranker other than the database ranks them (SEARCH_RANKER)
    if found is not None and not conditions and query.order == "relevance":
        ranked = search.every_ranked_hit(session, found)
    chunks = (ranked[i : i + size] for i in range(0, len(ranked), size)) if ranked is not None else None
    for rows in chunks or batches(session, ordered_rows(session, query), size):
        yield in_page_order(rows, _service_records(session, [row[0] for row in rows], full, minimal))


def _service_records(session: Session, ids: list[uuid.UUID], full: bool, minimal: bool) -> dict:
    """The records of these services by id: minimal, full or brief (see `list_services`)."""
    if minimal:
        return {
            service_id: {"id": str(service_id), "last_modified": modified.isoformat()}
            if modified
            else {"id": str(service_id)}
            for service_id, modified in session.execute(
                select(Service.id, Service.last_modified).where(Service.id.in_(ids))
            )
        }
    if full:
        return {s.id: s for s in session.scalars(select(Service).where(Service.id.in_(ids)).options(*FULL_SERVICE))}
    return service_rows(session, ids)


# The capacity columns are not list fields (`capacities` is in the full record).
SERVICE_COLUMNS = [column for column in Service.__table__.columns if not column.key.startswith("capacity_")]


ORGANIZATION_BRIEF = ["id", "name", "alternate_name", "description", "email", "website", "parent_organization_id"]


PROGRAM_BRIEF = ["id", "organization_id", "name", "alternate_name", "description", "slug"]


def _brief_statement():
    """The one query of `service_rows`, built once: the service's list columns, its
    organization's and its program's brief columns, for the ids bound as `ids`."""
    org, prog = Organization.__table__, Program.__table__
    return (
        select(
            *SERVICE_COLUMNS,
            *(org.c[name].label(f"organization.{name}") for name in ORGANIZATION_BRIEF),
            *(prog.c[name].label(f"program.{name}") for name in PROGRAM_BRIEF),
        )
        .select_from(
            Service.__table__.join(org, org.c.id == Service.organization_id).outerjoin(
                prog, prog.c.id == Service.program_id
            )
        )
        .where(Service.id.in_(bindparam("ids", expanding=True)))
    )


_BRIEF = _brief_statement()
# Where each column of `_BRIEF` goes: (record key, or None for the nested record's key, name).
_BRIEF_KEYS = [
    (prefix, name) if name else (None, prefix)
    for prefix, _, name in (column.key.partition(".") for column in _BRIEF.selected_columns)
]
_BRIEF_ID = _BRIEF_KEYS.index((None, "id"))


def service_rows(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Brief service records by id, each with its organization and program, from one query:
    the shape of `schemas.hsds.ServiceListItemSchema`, as JSON-ready values, empty values left out."""
    if not ids:
        return {}
    out: dict[uuid.UUID, dict] = {}
    for row in session.execute(_BRIEF, {"ids": ids}):
        record: dict = {}
        nested: dict[str, dict] = {"organization": {}, "program": {}}
        for (prefix, name), value in zip(_BRIEF_KEYS, row, strict=True):
            if value is None or value == "":
                continue
            if isinstance(value, uuid.UUID):
                value = str(value)
            elif isinstance(value, (datetime, date)):
                value = value.isoformat()
            if prefix is None:
                record[name] = value
            else:
                nested[prefix][name] = value
        for name, values in nested.items():
            if values:
                record[name] = values
        out[row[_BRIEF_ID]] = record
    return out


def get_service(session: Session, service_id: uuid.UUID) -> Service:
    """A full service record (NotFound otherwise)."""
    service = session.scalar(select(Service).where(Service.id == service_id).options(*FULL_SERVICE))
    if service is None:
        raise NotFound("No service has this id.")
    return service


def _service_at_location_options(full: bool) -> list:
    """Loader options of services at locations: service and location, and when full
    their own phones, schedules and contacts."""
    options = [
        selectinload(ServiceAtLocation.service),
        selectinload(ServiceAtLocation.location).options(*FULL_LOCATION),
    ]
    if full:
        options += [
            selectinload(ServiceAtLocation.phones),
            selectinload(ServiceAtLocation.schedules),
            selectinload(ServiceAtLocation.contacts).selectinload(Contact.phones),
        ]
    return options


def list_service_at_locations(
    session: Session, query: ServiceQuery, page: int, per_page: int, full: bool, count_limit: int | None = None
) -> Page:
    """A page of service-at-location records; the total as `list_services` counts it."""
    rows = page_rows(session, query, page, per_page, entity=ServiceAtLocation)
    records = by_id(session, ServiceAtLocation, [row[0] for row in rows], _service_at_location_options(full))
    total, exact = page_total(session, query, page, per_page, count_limit, ServiceAtLocation)
    result = Page(
        contents=in_page_order(rows, records), total_items=total, page_number=page, per_page=per_page, exact=exact
    )
    result.extra.update(search_guidance(session, query, total))
    return result


def stream_service_at_locations(session: Session, query: ServiceQuery, full: bool) -> Iterator[list]:
    """Every service at location the query matches, in batches, as `stream_services`."""
    options = _service_at_location_options(full)
    for rows in batches(session, ordered_rows(session, query, entity=ServiceAtLocation)):
        yield in_page_order(rows, by_id(session, ServiceAtLocation, [row[0] for row in rows], options))


def get_service_at_location(session: Session, sal_id: uuid.UUID) -> ServiceAtLocation:
    """A full service at location record (NotFound otherwise)."""
    sal = session.scalar(
        select(ServiceAtLocation)
        .where(ServiceAtLocation.id == sal_id)
        .options(
            selectinload(ServiceAtLocation.service),
            selectinload(ServiceAtLocation.location).options(*FULL_LOCATION),
            selectinload(ServiceAtLocation.phones),
            selectinload(ServiceAtLocation.schedules),
            selectinload(ServiceAtLocation.contacts).selectinload(Contact.phones),
        )
    )
    if sal is None:
        raise NotFound("No service at location has this id.")
    return sal
