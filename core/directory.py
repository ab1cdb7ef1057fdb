"""Reading the directory: lists with HSDS filters, and single records by id."""
from __future__ import annotations

import difflib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Select, and_, false, func, literal, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from core import geo, search, tags
from core.advisories import advisories_for
from core.errors import InvalidData, NotFound
from core.paging import STREAM_BATCH, Page, batches, bounded_total, paginate
from core.text import normalise
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


def term_and_descendants(term_ids) -> Select:
    """A select of the ids of the given terms and every term below them."""
    tree = select(TaxonomyTerm.id).where(TaxonomyTerm.id.in_(term_ids)).cte("term_tree", recursive=True)
    tree = tree.union(select(TaxonomyTerm.id).where(TaxonomyTerm.parent_id == tree.c.id))
    return select(tree.c.id)


def _category_term_ids(session: Session, filters: ServiceFilters) -> list[uuid.UUID] | None:
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
    return list(session.scalars(select(TaxonomyTerm.id).where(or_(TaxonomyTerm.id.in_(ids), TaxonomyTerm.code.in_(codes)))))


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
        term_ids = _category_term_ids(session, f)
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
            taking if f.accepting_new
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


def _ordered(session: Session, query: ServiceQuery, entity=Service) -> Select:
    """A select of (entity id, score, distance) in the order the query asks for."""
    # A radius is always joined below (it comes with a point), never a condition here.
    found, conditions = plan(session, query, radius=False)
    hits = search.hits(session, found) if found is not None else None
    if entity is Service and hits is not None and not conditions and query.order not in ("name", "modified"):
        key = service_id = hits.c.service_id  # the index alone: no join to the services table
        stmt = select(key)
        joined = False
    else:
        key, service_id, joined = entity.id, Service.id, True
        stmt = select(key) if entity is Service else select(key).join(Service, Service.id == entity.service_id)
        if hits is not None:
            stmt = stmt.join(hits, hits.c.service_id == Service.id)
    score = hits.c.score if hits is not None and query.search else None
    distance = None
    if query.measures_distance:
        nearest = _nearest(query)
        if query.proximity_m is not None:  # the radius is a filter: join the places within it
            stmt = stmt.join(nearest, nearest.c.service_id == service_id)
        else:
            stmt = stmt.outerjoin(nearest, nearest.c.service_id == service_id)
        distance = nearest.c.distance
    stmt = stmt.where(*conditions)
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
    order += [key]
    stmt = stmt.add_columns(
        (score if score is not None else literal(None)).label("score"),
        (distance if distance is not None else literal(None)).label("distance"),
    )
    return stmt.order_by(*order)


def _count(session: Session, query: ServiceQuery, entity=Service, up_to: int | None = None) -> int:
    """How many rows the query matches (stopping after `up_to`), counted without ranking or
    measuring them."""
    found, conditions = plan(session, query)
    if entity is Service and found is not None and not conditions:
        return search.count_hits(session, found, up_to)
    ids = matching_service_ids(session, query)
    rows = ids if entity is Service else select(entity.id).where(entity.service_id.in_(ids))
    return session.scalar(select(func.count()).select_from(rows.limit(up_to).subquery())) or 0


def _total(session: Session, query: ServiceQuery, page: int, per_page: int, count_limit: int | None, entity=Service):
    """(total_items, exact): see core.paging.bounded_total."""
    return bounded_total(lambda up_to: _count(session, query, entity, up_to), page, per_page, count_limit)


def _page_ids(session: Session, query: ServiceQuery, page: int, per_page: int, entity=Service) -> list:
    """(id, score, distance) of one page of the query's results, in order."""
    offset = (page - 1) * per_page
    found, conditions = plan(session, query)
    if entity is Service and found is not None and found.terms and query.order == "relevance" and not conditions:
        if found.impossible:
            return []
        return [(service_id, score, None) for service_id, score in search.top_hits(session, found, per_page, offset)]
    return [tuple(row) for row in session.execute(_ordered(session, query, entity).limit(per_page).offset(offset))]


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
    rows = _page_ids(session, query, page, per_page)
    contents = _in_page_order(rows, _service_records(session, [row[0] for row in rows], full, minimal))
    total, exact = _total(session, query, page, per_page, count_limit)
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
    for rows in chunks or batches(session, _ordered(session, query), size):
        yield _in_page_order(rows, _service_records(session, [row[0] for row in rows], full, minimal))


def _service_records(session: Session, ids: list[uuid.UUID], full: bool, minimal: bool) -> dict:
    if minimal:
        return {
            service_id: {"id": str(service_id), "last_modified": modified.isoformat()} if modified else {"id": str(service_id)}
            for service_id, modified in session.execute(select(Service.id, Service.last_modified).where(Service.id.in_(ids)))
        }
    if full:
        return {s.id: s for s in session.scalars(select(Service).where(Service.id.in_(ids)).options(*FULL_SERVICE))}
    return service_rows(session, ids)


# The capacity columns are not list fields (`capacities` is in the full record).
SERVICE_COLUMNS = [column for column in Service.__table__.columns if not column.key.startswith("capacity_")]
ORGANIZATION_BRIEF = ["id", "name", "alternate_name", "description", "email", "website", "parent_organization_id"]
PROGRAM_BRIEF = ["id", "organization_id", "name", "alternate_name", "description", "slug"]


def _in_page_order(rows: list, records: dict) -> list:
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


def service_rows(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Brief service records by id, each with its organization and program, from one query:
    the shape of `schemas.hsds.ServiceListItemSchema`, as JSON-ready values, empty values left out."""
    if not ids:
        return {}
    org, prog = Organization.__table__, Program.__table__
    stmt = (
        select(
            *SERVICE_COLUMNS,
            *(org.c[name].label(f"organization.{name}") for name in ORGANIZATION_BRIEF),
            *(prog.c[name].label(f"program.{name}") for name in PROGRAM_BRIEF),
        )
        .select_from(Service.__table__.join(org, org.c.id == Service.organization_id).outerjoin(prog, prog.c.id == Service.program_id))
        .where(Service.id.in_(ids))
    )
    out: dict[uuid.UUID, dict] = {}
    for row in session.execute(stmt).mappings():
        record: dict = {}
        nested: dict[str, dict] = {"organization": {}, "program": {}}
        for key, value in row.items():
            if value is None or value == "":
                continue
            if isinstance(value, uuid.UUID):
                value = str(value)
            elif isinstance(value, (datetime, date)):
                value = value.isoformat()
            prefix, _, name = key.partition(".")
            if name:
                nested[prefix][name] = value
            else:
                record[key] = value
        for name, values in nested.items():
            if values:
                record[name] = values
        out[row["id"]] = record
    return out


def facet_counts(session: Session, query: ServiceQuery) -> dict:
    """Counts of matching services by category, town, language and program. Each facet's
    counts respect every filter but its own, so a coordinator sees what each choice would give."""
    out: dict = {}

    for name in query.facets:
        ids = matching_service_ids(session, query, skip=name)
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
        else:  # town: named towns, each also covered by every statewide service and every
            # service that states no area (the coverage rule, see criteria)
            statewide = select(ServiceArea.service_id).where(ServiceArea.statewide.is_(True), ServiceArea.service_id.in_(ids))
            n_statewide = session.scalar(
                select(func.count(func.distinct(ServiceArea.service_id))).where(
                    ServiceArea.statewide.is_(True), ServiceArea.service_id.in_(ids)
                )
            )
            named = select(ServiceArea.service_id).join(ServiceAreaTown, ServiceAreaTown.service_area_id == ServiceArea.id)
            n_unstated = session.scalar(
                select(func.count(Service.id)).where(
                    Service.id.in_(ids), Service.id.not_in(statewide), Service.id.not_in(named)
                )
            )
            rows = session.execute(
                select(ServiceAreaTown.town, func.count(func.distinct(ServiceArea.service_id)))
                .join(ServiceArea, ServiceArea.id == ServiceAreaTown.service_area_id)
                .where(ServiceArea.service_id.in_(ids), ServiceArea.service_id.not_in(statewide))
                .group_by(ServiceAreaTown.town)
            ).all()
            values = [{"value": town, "count": n + n_statewide + n_unstated} for town, n in rows]
            if n_statewide:
                values.append({"value": "statewide", "count": n_statewide})
        out[name] = sorted((v for v in values if v["count"]), key=lambda v: (-v["count"], v["value"]))
    return out


def get_service(session: Session, service_id: uuid.UUID) -> Service:
    service = session.scalar(select(Service).where(Service.id == service_id).options(*FULL_SERVICE))
    if service is None:
        raise NotFound("No service has this id.")
    return service


def _service_at_location_options(full: bool) -> list:
    options = [selectinload(ServiceAtLocation.service), selectinload(ServiceAtLocation.location).options(*FULL_LOCATION)]
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
    rows = _page_ids(session, query, page, per_page, entity=ServiceAtLocation)
    records = _by_id(session, ServiceAtLocation, [row[0] for row in rows], _service_at_location_options(full))
    total, exact = _total(session, query, page, per_page, count_limit, ServiceAtLocation)
    result = Page(
        contents=_in_page_order(rows, records), total_items=total, page_number=page, per_page=per_page, exact=exact
    )
    result.extra.update(search_guidance(session, query, total))
    return result


def query_language(query: ServiceQuery) -> str:
    """The language to answer a search in: the one asked for, else the one its words are in."""
    if query.language:
        return query.language
    return search.parse(query.search).language if query.search else "en"


def search_guidance(session: Session, query: ServiceQuery, total: int) -> dict:
    """What a list envelope adds for a search: `advisories` (who to call now, core.advisories)
    when its words signal an emergency, and `suggestions` when nothing matched."""
    if not query.search:
        return {}
    out: dict = {}
    found = advisories_for(query.search, query_language(query))
    if found:
        out["advisories"] = found
    if total == 0:
        out["suggestions"] = suggestions(session, query)
    return out


def suggestions(session: Session, query: ServiceQuery) -> dict:
    """For a search that found nothing: `did_you_mean` (the query with each word the directory
    does not know replaced by the closest word it does, when one is close) and `categories`
    (broader categories to browse: the parents of the categories filtered on, else the
    top-level categories with active services), each {code, name}."""
    out: dict = {}
    parsed = search.parse(query.search)
    replaced, changed = [], False
    for word in search.normalise(query.search):
        wanted = word in parsed.content_words and word not in parsed.protected
        better = search.closest_word(session, word) if wanted else None
        replaced.append(better or word)
        changed = changed or better is not None
    if changed:
        out["did_you_mean"] = " ".join(replaced)
    term_ids = _category_term_ids(session, query.filters)
    if term_ids:
        parent_ids = {p for p in session.scalars(select(TaxonomyTerm.parent_id).where(TaxonomyTerm.id.in_(term_ids))) if p}
        broader = select(TaxonomyTerm).where(TaxonomyTerm.id.in_(parent_ids))
    else:
        used = select(Attribute.taxonomy_term_id).join(Service, Service.id == Attribute.link_id).where(
            Attribute.link_entity == "service", Service.status == "active"
        )
        tops = set()
        terms = {t.id: t for t in session.scalars(select(TaxonomyTerm))}
        for term_id in session.scalars(used.distinct()):
            current = terms.get(term_id)
            while current is not None and current.parent_id in terms:
                current = terms[current.parent_id]
            if current is not None:
                tops.add(current.id)
        broader = select(TaxonomyTerm).where(TaxonomyTerm.id.in_(tops))
    out["categories"] = [
        {"code": term.code, "name": term.name} for term in session.scalars(broader.order_by(TaxonomyTerm.name, TaxonomyTerm.id))
    ]
    return out


def check_filters(session: Session, filters: ServiceFilters) -> None:
    """Refuse filter values that name nothing (`town=Hartfrod`, `category=occh-nope`,
    `postcode=99999`): InvalidData naming the parameter and, where one is close, the valid value
    (under `did_you_mean`), rather than an empty page a family cannot tell from "nothing serves you"."""
    messages: dict[str, list[str]] = {}
    close: dict[str, list[str]] = {}

    def refuse(name: str, value: str, choices: dict[str, str], what: str) -> None:
        match = difflib.get_close_matches(value.strip().lower(), list(choices), n=1, cutoff=0.75)
        messages.setdefault(name, []).append(f"Unknown {what}." + (f" Did you mean {choices[match[0]]}?" if match else ""))
        if match:
            close.setdefault(name, []).append(choices[match[0]])

    if filters.towns:
        known = {place.name.lower(): place.name for place in geo.towns().values()}
        unknown = [town for town in filters.towns if town.strip().lower() not in known]
        if unknown:
            named = session.scalars(select(ServiceAreaTown.town).distinct()).all()
            known.update({town.lower(): town for town in named})
            for town in unknown:
                if town.strip().lower() not in known:
                    refuse("town", town, known, "town (a Connecticut town or one a service area names)")
    if filters.categories:
        codes = {code.lower(): code for code in session.scalars(select(TaxonomyTerm.code).where(TaxonomyTerm.code.is_not(None)))}
        ids = []
        for value in filters.categories:
            try:
                ids.append(uuid.UUID(value))
            except ValueError:
                if value.lower() not in codes:
                    refuse("category", value, codes, "category code")
        if ids:
            found = set(session.scalars(select(TaxonomyTerm.id).where(TaxonomyTerm.id.in_(ids))))
            if set(ids) - found:
                messages.setdefault("category", []).append("No category has this id.")
    for postcode in filters.postcodes:
        if geo.zip_place(postcode) is None:
            refuse("postcode", postcode[:5], {z: z for z in geo.zip_codes()}, "Connecticut ZIP code")
    if messages:
        errors: dict = {"query": messages}
        if close:
            errors["did_you_mean"] = close
        raise InvalidData("A filter names nothing in the directory; see errors.", errors)


def stream_service_at_locations(session: Session, query: ServiceQuery, full: bool) -> Iterator[list]:
    """Every service at location the query matches, in batches, as `stream_services`."""
    options = _service_at_location_options(full)
    for rows in batches(session, _ordered(session, query, entity=ServiceAtLocation)):
        yield _in_page_order(rows, _by_id(session, ServiceAtLocation, [row[0] for row in rows], options))


def _by_id(session: Session, entity, ids: list, options=()) -> dict:
    """The records of `entity` with these ids, by id, with their relations loaded by `options`."""
    return {record.id: record for record in session.scalars(select(entity).where(entity.id.in_(ids)).options(*options))}


def _stream_entities(session: Session, stmt: Select, entity, options=()) -> Iterator[list]:
    """Every record `stmt` (an ordered select of `entity`) selects, in batches, as `stream_services`."""
    for rows in batches(session, stmt.with_only_columns(entity.id)):
        records = _by_id(session, entity, [row[0] for row in rows], options)
        yield [records[row[0]] for row in rows]


def _contains_words(columns, text: str | None):
    """A condition: every word of `text` (normalised as search words are) is found in one of
    `columns`, ignoring case. None when `text` has no words."""
    words = normalise(text or "")
    if not words:
        return None
    return and_(*(or_(*(func.lower(column).contains(word, autoescape=True) for column in columns)) for word in words))


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


def list_locations(session: Session, organization_ids: list[uuid.UUID], page: int, per_page: int) -> Page:
    """Locations by name, with their addresses, phones and languages."""
    stmt = select(Location).options(*FULL_LOCATION)
    if organization_ids:
        stmt = stmt.where(Location.organization_id.in_(organization_ids))
    return paginate(session, stmt.order_by(Location.name, Location.id), page, per_page)


def get_location(session: Session, location_id: uuid.UUID) -> Location:
    location = session.scalar(select(Location).where(Location.id == location_id).options(*FULL_LOCATION))
    if location is None:
        raise NotFound("No location has this id.")
    return location


def _organization_options(full_service: bool):
    services = selectinload(Organization.services)
    return (
        selectinload(Organization.phones),
        selectinload(Organization.contacts).selectinload(Contact.phones),
        selectinload(Organization.locations).options(*FULL_LOCATION),
        selectinload(Organization.programs),
        services.options(*FULL_SERVICE) if full_service else services,
    )


def _best_active_service(session: Session, terms, owner_column) -> Select:
    """Per owner (`owner_column`: a service's organization or program), the relevance of its
    best-matching active service for `terms`: a subquery of (owner_id, score)."""
    found = search.hits(session, search.Criteria(terms=terms, tag_groups=[[tags.tag(tags.STATUS, "active")]]))
    return (
        select(owner_column.label("owner_id"), func.max(found.c.score).label("score"))
        .join(found, found.c.service_id == Service.id)
        .group_by(owner_column)
        .subquery("best")
    )


def _organizations(session: Session, search_text: str | None) -> Select:
    """Organizations by name; with `search_text`, those whose own name, alternate name or
    description holds every word, or that provide an active service matching the words (ranked
    as services are), the best-matching service first."""
    stmt = select(Organization)
    order = [Organization.name, Organization.id]
    own = _contains_words([Organization.name, Organization.alternate_name, Organization.description], search_text)
    terms = search.search_terms(session, search_text) if search_text else []
    if terms:
        best = _best_active_service(session, terms, Service.organization_id)
        stmt = stmt.outerjoin(best, best.c.owner_id == Organization.id)
        stmt = stmt.where(best.c.score.is_not(None) if own is None else or_(best.c.score.is_not(None), own))
        order.insert(0, best.c.score.desc().nulls_last())
    elif own is not None:
        stmt = stmt.where(own)
    return stmt.order_by(*order)


def list_organizations(
    session: Session, page: int, per_page: int, full: bool, full_service: bool, search_text: str | None = None
) -> Page:
    stmt = _organizations(session, search_text)
    if full or full_service:
        stmt = stmt.options(*_organization_options(full_service))
    return paginate(session, stmt, page, per_page)


def stream_organizations(session: Session, full: bool, full_service: bool, search_text: str | None = None) -> Iterator[list]:
    options = _organization_options(full_service) if full or full_service else ()
    return _stream_entities(session, _organizations(session, search_text), Organization, options)


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
        best = _best_active_service(session, search.search_terms(session, search_text), Service.program_id)
        stmt = stmt.join(best, best.c.owner_id == Program.id)
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


def _taxonomies(search_text: str | None) -> Select:
    """Taxonomies by name; with `search_text`, those whose name or description holds every word."""
    stmt = select(Taxonomy)
    own = _contains_words([Taxonomy.name, Taxonomy.description], search_text)
    if own is not None:
        stmt = stmt.where(own)
    return stmt.order_by(Taxonomy.name, Taxonomy.id)


def list_taxonomies(session: Session, page: int, per_page: int, search_text: str | None = None) -> Page:
    return paginate(session, _taxonomies(search_text), page, per_page)


def stream_taxonomies(session: Session, search_text: str | None = None) -> Iterator[list]:
    return _stream_entities(session, _taxonomies(search_text), Taxonomy)


def get_taxonomy(session: Session, taxonomy_id: uuid.UUID) -> Taxonomy:
    taxonomy = session.get(Taxonomy, taxonomy_id)
    if taxonomy is None:
        raise NotFound("No taxonomy has this id.")
    return taxonomy


@dataclass
class TermFilters:
    """Taxonomy term filters. Values within one list are ORed; the filters are ANDed."""

    taxonomy_ids: list[uuid.UUID] = field(default_factory=list)
    parent_ids: list[uuid.UUID] = field(default_factory=list)
    top_only: bool = False
    search: str | None = None  # every word in the name, code or description


def _taxonomy_terms(filters: TermFilters) -> Select:
    stmt = select(TaxonomyTerm)
    if filters.taxonomy_ids:
        stmt = stmt.where(TaxonomyTerm.taxonomy_id.in_(filters.taxonomy_ids))
    if filters.parent_ids:
        stmt = stmt.where(TaxonomyTerm.parent_id.in_(filters.parent_ids))
    if filters.top_only:
        stmt = stmt.where(TaxonomyTerm.parent_id.is_(None))
    own = _contains_words([TaxonomyTerm.name, TaxonomyTerm.code, TaxonomyTerm.description], filters.search)
    if own is not None:
        stmt = stmt.where(own)
    return stmt.order_by(TaxonomyTerm.code, TaxonomyTerm.id)


def list_taxonomy_terms(session: Session, filters: TermFilters, page: int, per_page: int) -> Page:
    return paginate(session, _taxonomy_terms(filters), page, per_page)


def stream_taxonomy_terms(session: Session, filters: TermFilters) -> Iterator[list]:
    return _stream_entities(session, _taxonomy_terms(filters), TaxonomyTerm)


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
