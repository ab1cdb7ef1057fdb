"""Reading the directory: lists with HSDS filters, and single records by id."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, and_, false, func, literal, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from core import geo, search
from core.errors import NotFound
from core.paging import Page, paginate
from models import (
    Attribute,
    Contact,
    Language,
    Location,
    Organization,
    Program,
    ReferralContactPoint,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    ServicePoint,
    Taxonomy,
    TaxonomyTerm,
)

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


@dataclass
class ServiceQuery:
    """What a list of services asks for: filters, words, a point, a radius and an order."""

    filters: ServiceFilters = field(default_factory=ServiceFilters)
    search: str | None = None
    point: geo.Place | None = None
    proximity_m: float | None = None
    sort: str | None = None  # relevance, name, distance, modified
    facets: list[str] = field(default_factory=list)
    _match: search.Match | None = field(default=None, init=False, repr=False)

    def match(self, session: Session) -> search.Match:
        """The compiled search, built once per request (typo look-ups included)."""
        if self._match is None:
            self._match = search.build_match(session, self.search or "")
        return self._match


def term_and_descendants(term_ids) -> Select:
    """A select of the ids of the given terms and every term below them."""
    tree = select(TaxonomyTerm.id).where(TaxonomyTerm.id.in_(term_ids)).cte("term_tree", recursive=True)
    tree = tree.union(select(TaxonomyTerm.id).where(TaxonomyTerm.parent_id == tree.c.id))
    return select(tree.c.id)


def _services_with_terms(term_ids) -> Select:
    return select(Attribute.link_id).where(
        Attribute.link_entity == "service", Attribute.taxonomy_term_id.in_(term_ids)
    )


def _category_terms(filters: ServiceFilters) -> Select | None:
    """Term ids named by `taxonomy_term_id` and by `category` (an id or a code)."""
    ids = list(filters.taxonomy_term_ids)
    codes = []
    for value in filters.categories:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            codes.append(value.lower())
    if not ids and not codes:
        return None
    return select(TaxonomyTerm.id).where(or_(TaxonomyTerm.id.in_(ids), TaxonomyTerm.code.in_(codes)))


def _covering(towns: list[str]) -> Select:
    """Services with a service area that names one of `towns`, or a statewide area when one
    of them is a Connecticut town."""
    lowered = [town.strip().lower() for town in towns]
    named = select(ServiceAreaTown.service_area_id).where(func.lower(ServiceAreaTown.town).in_(lowered))
    covers = ServiceArea.id.in_(named)
    if any(geo.town_place(town) for town in towns):
        covers = or_(covers, ServiceArea.statewide.is_(True))
    return select(ServiceArea.service_id).where(covers)


def service_conditions(session: Session, query: ServiceQuery, skip: str | None = None) -> list:
    """WHERE clauses on `Service` for every filter (but the facet `skip`) and the search words."""
    f = query.filters
    conditions = []
    if f.organization_ids:
        conditions.append(Service.organization_id.in_(f.organization_ids))
    if f.program_ids and skip != "program":
        conditions.append(Service.program_id.in_(f.program_ids))
    if f.statuses:
        conditions.append(Service.status.in_(f.statuses))
    if f.modified_after is not None:
        conditions.append(Service.last_modified >= f.modified_after)
    terms = _category_terms(f)
    if terms is not None and skip != "category":
        conditions.append(Service.id.in_(_services_with_terms(term_and_descendants(terms))))
    if f.taxonomy_ids:
        in_taxonomy = select(TaxonomyTerm.id).where(TaxonomyTerm.taxonomy_id.in_(f.taxonomy_ids))
        conditions.append(Service.id.in_(_services_with_terms(in_taxonomy)))
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
    towns = list(f.towns)
    if f.postcodes and query.proximity_m is None:
        # A ZIP code outside Connecticut's table names no town, so it matches nothing.
        zip_towns = [place.name for place in map(geo.zip_place, f.postcodes) if place]
        if not zip_towns and skip != "town":
            conditions.append(false())  # no Connecticut ZIP code: nothing is known to cover it
        towns += zip_towns
    if towns and skip != "town":
        conditions.append(Service.id.in_(_covering(towns)))
    if f.languages and skip != "language":
        codes = [code.lower() for code in f.languages]
        conditions.append(Service.id.in_(select(Language.service_id).where(func.lower(Language.code).in_(codes))))
    if query.point is not None and query.proximity_m is not None:
        conditions.append(Service.id.in_(select(_nearest(query).c.service_id)))
    return conditions


def _nearest(query: ServiceQuery):
    """Each service's distance in metres from the query point to its nearest location."""
    point = query.point
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


def _ordered_services(session: Session, query: ServiceQuery, entity=Service) -> tuple[Select, list]:
    """A select of (entity, score, distance) in the order the query asks for."""
    score = distance = None
    stmt = select(entity)
    if entity is not Service:
        stmt = stmt.join(Service, entity.service_id == Service.id)
    if query.search:
        match = query.match(session)
        stmt = stmt.join(match.ranked, match.ranked.c.service_id == Service.id)
        score = match.ranked.c.score
    if query.point is not None and (query.sort == "distance" or query.proximity_m is not None):
        nearest = _nearest(query)
        stmt = stmt.outerjoin(nearest, nearest.c.service_id == Service.id)
        distance = nearest.c.distance
    stmt = stmt.where(*service_conditions(session, query))
    sort = query.sort or ("relevance" if score is not None else "name")
    order: list = []
    if sort == "distance" and distance is not None:
        order += [distance.is_(None), distance]
    elif sort == "modified":
        order += [Service.last_modified.desc()]
    if score is not None and sort != "name":
        order += [score.desc()]
    order += [Service.name, entity.id]
    stmt = stmt.add_columns(
        (score if score is not None else literal(None)).label("score"),
        (distance if distance is not None else literal(None)).label("distance"),
    )
    return stmt.order_by(*order)


def _page_of_rows(session: Session, stmt: Select, total_stmt: Select, page: int, per_page: int) -> Page:
    total = session.scalar(total_stmt) or 0
    rows = session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    contents = []
    for row in rows:
        record = row[0]
        if row.distance is not None:
            record.distance = round(row.distance, 1)
        contents.append(record)
    return Page(contents=contents, total_items=total, page_number=page, per_page=per_page)


def _total(session: Session, query: ServiceQuery, entity=Service) -> Select:
    """How many rows the query matches, counted without ranking or measuring them."""
    stmt = select(func.count(entity.id))
    if entity is not Service:
        stmt = stmt.join(Service, entity.service_id == Service.id)
    if query.search:
        stmt = stmt.where(Service.id.in_(query.match(session).ids))
    return stmt.where(*service_conditions(session, query))


def list_services(session: Session, query: ServiceQuery, page: int, per_page: int, full: bool) -> Page:
    stmt = _ordered_services(session, query).options(*(FULL_SERVICE if full else BRIEF_SERVICE))
    result = _page_of_rows(session, stmt, _total(session, query), page, per_page)
    if query.facets:
        result.extra["facets"] = facet_counts(session, query)
    return result


def facet_counts(session: Session, query: ServiceQuery) -> dict:
    """Counts of matching services by category, town, language and program. Each facet's
    counts respect every filter but its own, so a coordinator sees what each choice would give."""
    out: dict = {}

    def matching(skip: str) -> Select:
        stmt = select(Service.id)
        if query.search:
            stmt = stmt.where(Service.id.in_(query.match(session).ids))
        return stmt.where(*service_conditions(session, query, skip=skip))

    for name in query.facets:
        ids = matching(name)
        if name == "category":
            closure = select(TaxonomyTerm.id.label("term_id"), TaxonomyTerm.id.label("ancestor_id")).cte(
                "term_closure", recursive=True
            )
            parent = aliased(TaxonomyTerm)
            closure = closure.union_all(
                select(closure.c.term_id, parent.parent_id)
                .join(parent, parent.id == closure.c.ancestor_id)
                .where(parent.parent_id.is_not(None))
            )
            rows = session.execute(
                select(TaxonomyTerm.code, TaxonomyTerm.id, TaxonomyTerm.name, func.count(func.distinct(Attribute.link_id)))
                .join(closure, closure.c.term_id == Attribute.taxonomy_term_id)
                .join(TaxonomyTerm, TaxonomyTerm.id == closure.c.ancestor_id)
                .where(Attribute.link_entity == "service", Attribute.link_id.in_(ids))
                .group_by(TaxonomyTerm.code, TaxonomyTerm.id, TaxonomyTerm.name)
            ).all()
            values = [{"value": code, "id": str(tid), "name": tname, "count": n} for code, tid, tname, n in rows]
        elif name == "program":
            rows = session.execute(
                select(Program.slug, Program.id, Program.name, func.count(Service.id))
                .join(Service, Service.program_id == Program.id)
                .where(Service.id.in_(ids))
                .group_by(Program.slug, Program.id, Program.name)
            ).all()
            values = [{"value": slug, "id": str(pid), "name": pname, "count": n} for slug, pid, pname, n in rows]
        elif name == "language":
            rows = session.execute(
                select(func.lower(Language.code), func.count(func.distinct(Language.service_id)))
                .where(Language.service_id.in_(ids))
                .group_by(func.lower(Language.code))
            ).all()
            values = [{"value": code, "count": n} for code, n in rows]
        else:  # town: named towns, each also covered by every statewide service
            statewide = select(ServiceArea.service_id).where(ServiceArea.statewide.is_(True), ServiceArea.service_id.in_(ids))
            n_statewide = session.scalar(
                select(func.count(func.distinct(ServiceArea.service_id))).where(
                    ServiceArea.statewide.is_(True), ServiceArea.service_id.in_(ids)
                )
            )
            rows = session.execute(
                select(ServiceAreaTown.town, func.count(func.distinct(ServiceArea.service_id)))
                .join(ServiceArea, ServiceArea.id == ServiceAreaTown.service_area_id)
                .where(ServiceArea.service_id.in_(ids), ServiceArea.service_id.not_in(statewide))
                .group_by(ServiceAreaTown.town)
            ).all()
            values = [{"value": town, "count": n + n_statewide} for town, n in rows]
            if n_statewide:
                values.append({"value": "statewide", "count": n_statewide})
        out[name] = sorted((v for v in values if v["count"]), key=lambda v: (-v["count"], v["value"]))
    return out


def get_service(session: Session, service_id: uuid.UUID) -> Service:
    service = session.scalar(select(Service).where(Service.id == service_id).options(*FULL_SERVICE))
    if service is None:
        raise NotFound("No service has this id.")
    return service


def list_service_at_locations(session: Session, query: ServiceQuery, page: int, per_page: int, full: bool) -> Page:
    options = [selectinload(ServiceAtLocation.service), selectinload(ServiceAtLocation.location).options(*FULL_LOCATION)]
    if full:
        options += [
            selectinload(ServiceAtLocation.phones),
            selectinload(ServiceAtLocation.schedules),
            selectinload(ServiceAtLocation.contacts).selectinload(Contact.phones),
        ]
    stmt = _ordered_services(session, query, entity=ServiceAtLocation).options(*options)
    return _page_of_rows(session, stmt, _total(session, query, ServiceAtLocation), page, per_page)


def get_service_at_location(session: Session, sal_id: uuid.UUID) -> ServiceAtLocation:
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


def _organization_options(full_service: bool):
    services = selectinload(Organization.services)
    return (
        selectinload(Organization.phones),
        selectinload(Organization.contacts).selectinload(Contact.phones),
        selectinload(Organization.locations).options(*FULL_LOCATION),
        selectinload(Organization.programs),
        services.options(*FULL_SERVICE) if full_service else services,
    )


def list_organizations(session: Session, page: int, per_page: int, full: bool, full_service: bool) -> Page:
    stmt = select(Organization).order_by(Organization.name, Organization.id)
    if full or full_service:
        stmt = stmt.options(*_organization_options(full_service))
    return paginate(session, stmt, page, per_page)


def get_organization(session: Session, organization_id: uuid.UUID, full_service: bool) -> Organization:
    organization = session.scalar(
        select(Organization).where(Organization.id == organization_id).options(*_organization_options(full_service))
    )
    if organization is None:
        raise NotFound("No organization has this id.")
    return organization


def list_programs(
    session: Session, organization_ids: list[uuid.UUID], page: int, per_page: int, search_text: str | None = None
) -> Page:
    """Programs by name; with `search_text`, the programs whose active services match, best first."""
    stmt = select(Program).options(selectinload(Program.organization), selectinload(Program.services))
    if organization_ids:
        stmt = stmt.where(Program.organization_id.in_(organization_ids))
    order = [Program.name, Program.id]
    if search_text:
        ranked = search.build_match(session, search_text).ranked
        best = (
            select(Service.program_id, func.max(ranked.c.score).label("score"))
            .join(ranked, ranked.c.service_id == Service.id)
            .where(Service.status == "active")
            .group_by(Service.program_id)
            .subquery("best")
        )
        stmt = stmt.join(best, best.c.program_id == Program.id)
        order.insert(0, best.c.score.desc())
    return paginate(session, stmt.order_by(*order), page, per_page)


def get_program(session: Session, id_or_slug: str) -> Program:
    """A program by its UUID or by its slug (`help-me-grow`)."""
    condition = Program.slug == id_or_slug
    try:
        condition = or_(condition, Program.id == uuid.UUID(id_or_slug))
    except ValueError:
        pass
    program = session.scalar(
        select(Program).where(condition).options(selectinload(Program.organization), selectinload(Program.services))
    )
    if program is None:
        raise NotFound("No program has this id or slug.")
    return program


def list_taxonomies(session: Session, page: int, per_page: int) -> Page:
    return paginate(session, select(Taxonomy).order_by(Taxonomy.name, Taxonomy.id), page, per_page)


def get_taxonomy(session: Session, taxonomy_id: uuid.UUID) -> Taxonomy:
    taxonomy = session.get(Taxonomy, taxonomy_id)
    if taxonomy is None:
        raise NotFound("No taxonomy has this id.")
    return taxonomy


def list_taxonomy_terms(
    session: Session,
    taxonomy_ids: list[uuid.UUID],
    parent_ids: list[uuid.UUID],
    top_only: bool,
    page: int,
    per_page: int,
) -> Page:
    stmt = select(TaxonomyTerm)
    if taxonomy_ids:
        stmt = stmt.where(TaxonomyTerm.taxonomy_id.in_(taxonomy_ids))
    if parent_ids:
        stmt = stmt.where(TaxonomyTerm.parent_id.in_(parent_ids))
    if top_only:
        stmt = stmt.where(TaxonomyTerm.parent_id.is_(None))
    return paginate(session, stmt.order_by(TaxonomyTerm.code, TaxonomyTerm.id), page, per_page)


def get_taxonomy_term(session: Session, term_id: uuid.UUID) -> TaxonomyTerm:
    term = session.scalar(
        select(TaxonomyTerm).where(TaxonomyTerm.id == term_id).options(selectinload(TaxonomyTerm.taxonomy_detail))
    )
    if term is None:
        raise NotFound("No taxonomy term has this id.")
    return term


@dataclass
class ContactPointFilters:
    service_ids: list[uuid.UUID] = field(default_factory=list)
    program_ids: list[uuid.UUID] = field(default_factory=list)
    audiences: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    purposes: list[str] = field(default_factory=list)


def list_referral_contact_points(
    session: Session, filters: ContactPointFilters, page: int, per_page: int
) -> Page:
    stmt = select(ReferralContactPoint).join(Service, ReferralContactPoint.service_id == Service.id)
    if filters.service_ids:
        stmt = stmt.where(ReferralContactPoint.service_id.in_(filters.service_ids))
    if filters.program_ids:
        stmt = stmt.where(Service.program_id.in_(filters.program_ids))
    if filters.audiences:
        stmt = stmt.where(ReferralContactPoint.audience.in_(filters.audiences))
    if filters.channels:
        stmt = stmt.where(ReferralContactPoint.channel.in_(filters.channels))
    if filters.purposes:
        stmt = stmt.where(ReferralContactPoint.purpose.in_(filters.purposes))
    stmt = stmt.order_by(Service.name, ReferralContactPoint.purpose, ReferralContactPoint.channel, ReferralContactPoint.id)
    return paginate(session, stmt, page, per_page)
