"""What a list of services asks for (`ServiceFilters`, `ServiceQuery`) and how it is
answered: the index criteria and row conditions of a query (`plan`), the ids it matches, its
rows in order, one page of them and its total."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select
from sqlalchemy.orm import Session

from core import geo, search, tags
from core.errors import InvalidData
from core.paging import bounded_total
from models import Service, ServicePoint, TaxonomyTerm


@dataclass
class ServiceFilters:
    """HSDS list filters. Values within one list are ORed; the lists are ANDed."""

    organization_ids: list[uuid.UUID] = field(default_factory=list)
    program_ids: list[uuid.UUID] = field(default_factory=list)
    taxonomy_term_ids: list[uuid.UUID] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # term ids or codes
    taxonomy_ids: list[uuid.UUID] = field(default_factory=list)
    statuses: list[str] = field(default_factory=lambda: ["active"])
    modified_after: datetime | None = None
    ages: list[float] = field(default_factory=list)  # years
    towns: list[str] = field(default_factory=list)
    postcodes: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    verified_before: date | None = None  # nobody verified it on or after this day
    accepting_new: bool | None = None  # a fresh capacity status that takes new clients (or not)
    capacity_stale_days: int = 30
    accepts_referrals: bool | None = None  # only services that do (True) or do not (False)


@dataclass
class ServiceQuery:
    """What a list of services asks for: filters, words, a point, a radius and an order."""

    filters: ServiceFilters = field(default_factory=ServiceFilters)
    search: str | None = None
    point: geo.Place | None = None
    proximity_m: float | None = None
    sort: str | None = None  # relevance, name, distance, modified
    facets: list[str] = field(default_factory=list)
    language: str | None = None  # the language the client asked for ("es"), None: not asked
    _terms: list[str] | None = field(default=None, init=False, repr=False)
    _plans: dict = field(default_factory=dict, init=False, repr=False)

    def terms(self, session: Session) -> list[str]:
        """The search words, worked out once per request (typo look-ups included)."""
        if self._terms is None:
            self._terms = search.search_terms(session, self.search) if self.search else []
        return self._terms

    @property
    def order(self) -> str:
        return self.sort or ("relevance" if self.search else "name")

    @property
    def measures_distance(self) -> bool:
        return self.point is not None and (self.sort == "distance" or self.proximity_m is not None)


def search_point(
    latitude: float | None, longitude: float | None, postcodes: list[str], measures: bool
) -> geo.Place | None:
    """The point a list measures distance from: the coordinates given, else, when the list
    `measures` (a radius or a distance order is asked), the centre of its first ZIP code;
    None when there is neither. InvalidData for a ZIP code Connecticut's table does not hold."""
    if latitude is not None and longitude is not None:
        return geo.Place("point", latitude, longitude)
    if not postcodes or not measures:
        return None
    point = geo.zip_place(postcodes[0])
    if point is None:
        raise InvalidData("Unknown Connecticut ZIP code.", {"query": {"postcode": ["Not a Connecticut ZIP code."]}})
    return point


def term_and_descendants(term_ids) -> Select:
    """A select of the ids of the given terms and every term below them."""
    tree = select(TaxonomyTerm.id).where(TaxonomyTerm.id.in_(term_ids)).cte("term_tree", recursive=True)
    tree = tree.union(select(TaxonomyTerm.id).where(TaxonomyTerm.parent_id == tree.c.id))
    return select(tree.c.id)


def category_term_ids(session: Session, filters: ServiceFilters) -> list[uuid.UUID] | None:
    """Ids of the terms named by `taxonomy_term_id` and by `category` (an id or a code)."""
    ids = list(filters.taxonomy_term_ids)
    codes = []
    for value in filters.categories:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            codes.append(value.lower())
    if not ids and not codes:
        return None
    return list(
        session.scalars(select(TaxonomyTerm.id).where(or_(TaxonomyTerm.id.in_(ids), TaxonomyTerm.code.in_(codes))))
    )


def criteria(session: Session, query: ServiceQuery, skip: str | None = None) -> search.Criteria:
    """The query's search words and filters as index criteria (every filter but the facet
    `skip`). A category matches the categories below it because every service carries the tags
    of its categories' ancestors; a town matches the services whose area names it and, for a
    Connecticut town (or ZIP code), every statewide service and every service that states no
    area (the coverage rule: a filter on town, ZIP code or age drops only a service whose
    stated coverage leaves the value out)."""
    f = query.filters
    groups: list[list[str]] = []

    def group(kind: str, values) -> None:
        groups.append(sorted({tags.tag(kind, value) for value in values}))

    if f.organization_ids:
        group(tags.ORGANIZATION, f.organization_ids)
    if f.program_ids and skip != "program":
        group(tags.PROGRAM, f.program_ids)
    if skip != "category":
        term_ids = category_term_ids(session, f)
        if term_ids is not None:
            group(tags.TERM, term_ids)
    if f.taxonomy_ids:
        group(tags.TAXONOMY, f.taxonomy_ids)
    if skip != "town":
        towns = list(f.towns)
        if f.postcodes and query.proximity_m is None:
            # A ZIP code outside Connecticut's table names no town, so it matches nothing.
            zip_towns = [town for postcode in f.postcodes for town in geo.zip_towns(postcode)]
            if not zip_towns:
                groups.append([])
            towns += zip_towns
        if towns:
            group(tags.TOWN, towns)
            if any(geo.town_place(town) for town in towns):
                groups[-1] += [tags.tag(tags.STATEWIDE), tags.tag(tags.AREA_UNSTATED)]
    if f.languages and skip != "language":
        group(tags.LANGUAGE, [code.lower() for code in f.languages])
    return search.Criteria(terms=query.terms(session), tag_groups=groups)


def plan(
    session: Session, query: ServiceQuery, skip: str | None = None, radius: bool = True
) -> tuple[search.Criteria | None, list]:
    """How to answer the query: index criteria (None when no word or tag filter is asked, so
    the services table alone answers it, in name order from its index) and row conditions
    (with the radius as a condition unless `radius` is False: the caller joins it). Worked out
    once per request for each `skip` and `radius`; callers must not change what it returns."""
    key = (skip, radius)
    if key not in query._plans:
        query._plans[key] = _plan(session, query, skip, radius)
    return query._plans[key]


def _plan(session: Session, query: ServiceQuery, skip: str | None, radius: bool) -> tuple[search.Criteria | None, list]:
    """`plan`, worked out: with no word or tag filter the statuses become a row condition
    (the services table answers alone); otherwise they are the first tag group."""
    found, conditions = criteria(session, query, skip), row_conditions(query, radius)
    statuses = query.filters.statuses
    if found.unconstrained:
        if statuses:
            conditions.append(Service.status.in_(statuses))
        return None, conditions
    if statuses:
        found.tag_groups.insert(0, sorted({tags.tag(tags.STATUS, status) for status in statuses}))
    return found, conditions


def row_conditions(query: ServiceQuery, radius: bool = True) -> list:
    """WHERE clauses on `Service` for the filters the index does not answer: ages, dates, radius."""
    f = query.filters
    conditions = []
    if f.modified_after is not None:
        conditions.append(Service.last_modified >= f.modified_after)
    if f.verified_before is not None:
        conditions.append(or_(Service.assured_date.is_(None), Service.assured_date < f.verified_before))
    if f.accepting_new is not None:
        from core.editing import ACCEPTING_NEW, fresh_capacity_condition

        taking = fresh_capacity_condition(ACCEPTING_NEW, f.capacity_stale_days)
        conditions.append(
            taking
            if f.accepting_new
            else or_(Service.capacity_status.is_(None), Service.capacity_updated.is_(None), ~taking)
        )
    if f.accepts_referrals is not None:
        conditions.append(Service.accepts_referrals.is_(f.accepts_referrals))
    if f.ages:
        conditions.append(
            or_(
                *(
                    and_(
                        or_(Service.minimum_age.is_(None), Service.minimum_age <= age),
                        or_(Service.maximum_age.is_(None), Service.maximum_age >= age),
                    )
                    for age in f.ages
                )
            )
        )
    if radius and query.point is not None and query.proximity_m is not None:
        conditions.append(Service.id.in_(select(_nearest(query).c.service_id)))
    return conditions


def matching_service_ids(session: Session, query: ServiceQuery, skip: str | None = None) -> Select:
    """A select of the ids of every service the query matches (but for the facet `skip`)."""
    found, conditions = plan(session, query, skip)
    if found is None:
        return select(Service.id).where(*conditions)
    hits = search.hits(session, found)
    if not conditions:
        return select(hits.c.service_id)
    return select(Service.id).join(hits, hits.c.service_id == Service.id).where(*conditions)


def _nearest(query: ServiceQuery):
    """Each service's distance in metres from the query point to its nearest location."""
    point = query.point
    assert point is not None  # called only for a query with a point (a radius or measures_distance)
    distance = func.distance_m(point.latitude, point.longitude, ServicePoint.latitude, ServicePoint.longitude)
    stmt = select(ServicePoint.service_id, func.min(distance).label("distance")).group_by(ServicePoint.service_id)
    if query.proximity_m is not None:
        low_lat, high_lat, low_lon, high_lon = geo.bounding_box(point.latitude, point.longitude, query.proximity_m)
        stmt = stmt.where(
            ServicePoint.latitude.between(low_lat, high_lat),
            ServicePoint.longitude.between(low_lon, high_lon),
            distance <= query.proximity_m,
        )
    return stmt.subquery("nearest")


def _ordered_base(query: ServiceQuery, entity, hits, conditions: list) -> tuple[Select, object, object, bool]:
    """The select an ordered list starts from: (select of the key, key column, service id
    column, whether the services table is joined). A relevance list of services with no row
    condition is read from the index alone, without joining the services table."""
    if entity is Service and hits is not None and not conditions and query.order not in ("name", "modified"):
        key = hits.c.service_id
        return select(key), key, key, False
    stmt = select(entity.id) if entity is Service else select(entity.id).join(Service, Service.id == entity.service_id)
    if hits is not None:
        stmt = stmt.join(hits, hits.c.service_id == Service.id)
    return stmt, entity.id, Service.id, True


def _with_distance(stmt: Select, query: ServiceQuery, service_id) -> tuple[Select, ColumnElement[Any]]:
    """Join each service's distance: only the places within the radius when there is one
    (the radius is a filter), else every service, measured when it has a place."""
    nearest = _nearest(query)
    if query.proximity_m is not None:
        stmt = stmt.join(nearest, nearest.c.service_id == service_id)
    else:
        stmt = stmt.outerjoin(nearest, nearest.c.service_id == service_id)
    return stmt, nearest.c.distance


def _order(query: ServiceQuery, key, joined: bool, hits, score, distance) -> list:
    """The ORDER BY of a list: the order asked for, then relevance, then name, then the key."""
    order: list = []
    if query.order == "distance" and distance is not None:
        order += [distance.is_(None), distance]
    elif query.order == "modified":
        order += [Service.last_modified.desc()]
    if score is not None and query.order != "name":
        order += [score.desc()]
    if joined:
        order += [Service.name]
    elif score is not None:
        order += [hits.c.tiebreak]  # equal scores as search.top_hits orders them
    return order + [key]


def ordered_rows(session: Session, query: ServiceQuery, entity=Service) -> Select:
    """A select of (entity id, score, distance) in the order the query asks for."""
    # A radius is always joined below (it comes with a point), never a condition here.
    found, conditions = plan(session, query, radius=False)
    hits = search.hits(session, found) if found is not None else None
    stmt, key, service_id, joined = _ordered_base(query, entity, hits, conditions)
    score = hits.c.score if hits is not None and query.search else None
    distance = None
    if query.measures_distance:
        stmt, distance = _with_distance(stmt, query, service_id)
    stmt = stmt.where(*conditions).add_columns(
        (score if score is not None else literal(None)).label("score"),
        (distance if distance is not None else literal(None)).label("distance"),
    )
    return stmt.order_by(*_order(query, key, joined, hits, score, distance))


def _count(session: Session, query: ServiceQuery, entity=Service, up_to: int | None = None) -> int:
    """How many rows the query matches (stopping after `up_to`), counted without ranking or
    measuring them."""
    found, conditions = plan(session, query)
    if entity is Service and found is not None and not conditions:
        return search.count_hits(session, found, up_to)
    ids = matching_service_ids(session, query)
    rows = ids if entity is Service else select(entity.id).where(entity.service_id.in_(ids))
    return session.scalar(select(func.count()).select_from(rows.limit(up_to).subquery())) or 0


def page_total(
    session: Session, query: ServiceQuery, page: int, per_page: int, count_limit: int | None, entity=Service
):
    """(total_items, exact): see core.paging.bounded_total."""
    return bounded_total(lambda up_to: _count(session, query, entity, up_to), page, per_page, count_limit)


def page_rows(session: Session, query: ServiceQuery, page: int, per_page: int, entity=Service) -> list:
    """(id, score, distance) of one page of the query's results, in order."""
    offset = (page - 1) * per_page
    found, conditions = plan(session, query)
    if entity is Service and found is not None and found.terms and query.order == "relevance" and not conditions:
        if found.impossible:
            return []
        return [(service_id, score, None) for service_id, score in search.top_hits(session, found, per_page, offset)]
    return [tuple(row) for row in session.execute(ordered_rows(session, query, entity).limit(per_page).offset(offset))]
