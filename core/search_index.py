"""Writing the search index: the denormalised text (`service_search`), filter tags and map
points (`service_point`) of each service, written in the same transaction as the service, and
the words the typo look-ups know (`search_word`). `core.search` reads what this writes and
re-exports these names."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from core import geo, tags
from core.text import deletions, index_words
from models import (
    Attribute,
    Language,
    Location,
    Organization,
    Program,
    SearchWord,
    SearchWordVariant,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    ServicePoint,
    ServiceSearch,
    TaxonomyTerm,
)


def dialect(session: Session) -> str:
    """The session's database engine: "sqlite" or "postgresql"."""
    return session.get_bind().dialect.name


class AreaText(NamedTuple):
    """What search reads of one service area."""

    id: uuid.UUID
    name: str | None
    description: str | None
    towns: Iterable[str]


def search_fields(
    *,
    name: str,
    alternate_name: str | None,
    description: str | None,
    eligibility_description: str | None,
    program_names: Sequence[str | None],
    organization_names: Sequence[str | None],
    category_names: Sequence[str],
    areas: Iterable[AreaText],
) -> dict[str, str]:
    """The text of each `service_search` column for one service, from plain values.

    The one definition of what search reads of a service: `index_service` and the bulk loader
    (`core.bulk`) both call it, so the two cannot drift. Areas are taken in order of name (then
    id) and their towns alphabetically, sorted here rather than by the database, so the text is
    the same on both engines whatever their collation.
    """
    ordered_areas = sorted(areas, key=lambda area: (area.name or "", area.id))
    return {
        "name_text": _join(name, alternate_name),
        "program_text": _join(*program_names),
        "category_text": _join(*category_names),
        "eligibility_text": _join(eligibility_description),
        "area_text": _join(*(_join(area.name, area.description, *sorted(area.towns)) for area in ordered_areas)),
        "description_text": _join(description),
        "organization_text": _join(*organization_names),
    }


class Term(Protocol):
    """A taxonomy term as search reads it: a TaxonomyTerm, or a row with these columns."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def taxonomy_id(self) -> uuid.UUID | None: ...
    @property
    def name(self) -> str: ...
    @property
    def parent_id(self) -> uuid.UUID | None: ...


_T = TypeVar("_T", bound=Term)


def category_names(term_ids: Iterable[uuid.UUID], term: Callable[[uuid.UUID], Term | None]) -> list[str]:
    """The names of the categories `term_ids` and of every category above them, each once.

    `term` looks a term up by id (anything with `id`, `name` and `parent_id`): the session for
    one service, a dictionary loaded beforehand for a batch. A service is thereby found by the
    broader categories too ("healthy housing" finds a lead inspection service).
    """
    return [current.name for current in ancestry(term_ids, term)]


def ancestry(term_ids: Iterable[uuid.UUID], term: Callable[[uuid.UUID], _T | None]) -> list[_T]:
    """The terms `term_ids` and every term above them, each once, in walking order."""
    found: list[_T] = []
    seen: set[uuid.UUID] = set()
    for term_id in term_ids:
        current = term(term_id)
        while current is not None and current.id not in seen:
            seen.add(current.id)
            found.append(current)
            current = term(current.parent_id) if current.parent_id else None
    return found


def tag_text(
    *,
    status: str,
    organization_id: uuid.UUID,
    program_id: uuid.UUID | None,
    terms: Iterable[Term],
    areas: Iterable[tuple[bool, Iterable[str]]],
    language_codes: Iterable[str | None],
) -> str:
    """The `tag_text` column of one service: its filter tags (core/tags.py). `terms` are its
    categories with every category above them (`ancestry`); `areas` are (statewide, towns)."""
    terms, areas = list(terms), [(statewide, list(towns)) for statewide, towns in areas]
    return tags.service_tags(
        status=status,
        organization_id=organization_id,
        program_id=program_id,
        term_ids=[term.id for term in terms],
        taxonomy_ids=[term.taxonomy_id for term in terms if term.taxonomy_id],
        towns=[town for _, towns in areas for town in towns],
        statewide=any(statewide for statewide, _ in areas),
        languages=[code for code in language_codes if code],
    )


def index_service(session: Session, service_id: uuid.UUID) -> None:
    """(Re)write the search row, the words and the points of one service."""
    index_services(session, [service_id])


# Services per batch of `index_services` queries.
SERVICES_PER_INDEX_BATCH = 500


def index_services(session: Session, service_ids: Iterable[uuid.UUID]) -> int:
    """(Re)write the search rows, the words and the points of many services, a few queries per
    batch of 500 whatever their number (ids that name no service are passed over); return how
    many were indexed."""
    ids = list(dict.fromkeys(service_ids))
    done = 0
    for start in range(0, len(ids), SERVICES_PER_INDEX_BATCH):
        done += _index_batch(session, ids[start : start + SERVICES_PER_INDEX_BATCH])
    return done


class _TermRow(NamedTuple):
    """A taxonomy term as the index reads it."""

    id: uuid.UUID
    taxonomy_id: uuid.UUID | None
    name: str
    parent_id: uuid.UUID | None


@dataclass
class _BatchRecords:
    """What the index rows of a batch of services are made from, read with one query per table."""

    services: Sequence
    organizations: dict
    programs: dict
    categories: dict[uuid.UUID, list[uuid.UUID]]  # by service, in order
    terms: dict[uuid.UUID, _TermRow]  # the categories and every term above them
    areas: dict[uuid.UUID, list]  # by service
    towns: dict[uuid.UUID, list[str]]  # by service area
    languages: dict[uuid.UUID, list[str | None]]  # by service
    places: Sequence  # (service_id, location_id)
    locations: dict  # by id, with their addresses


def _owners(session: Session, services: Sequence) -> tuple[dict, dict]:
    """The organizations and programs (id, name, alternate name) of the services, by id."""
    organizations = {
        row.id: row
        for row in session.execute(
            select(Organization.id, Organization.name, Organization.alternate_name).where(
                Organization.id.in_({service.organization_id for service in services})
            )
        )
    }
    program_ids = {service.program_id for service in services if service.program_id}
    programs = (
        {
            row.id: row
            for row in session.execute(
                select(Program.id, Program.name, Program.alternate_name).where(Program.id.in_(program_ids))
            )
        }
        if program_ids
        else {}
    )
    return organizations, programs


def _categories(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The categories of each service, in the order they were given."""
    categories: dict[uuid.UUID, list[uuid.UUID]] = {service_id: [] for service_id in ids}
    for row in session.execute(
        select(Attribute.link_id, Attribute.taxonomy_term_id)
        .where(Attribute.link_entity == "service", Attribute.link_id.in_(ids))
        .order_by(Attribute.id)
    ):
        categories[row.link_id].append(row.taxonomy_term_id)
    return categories


def _areas(session: Session, ids: list[uuid.UUID]) -> tuple[dict[uuid.UUID, list], dict[uuid.UUID, list[str]]]:
    """The service areas of the services (by service) and the towns of each area (by area)."""
    areas: dict[uuid.UUID, list] = {service_id: [] for service_id in ids}
    area_rows = session.execute(
        select(
            ServiceArea.id, ServiceArea.service_id, ServiceArea.name, ServiceArea.description, ServiceArea.statewide
        ).where(ServiceArea.service_id.in_(ids))
    ).all()
    towns: dict[uuid.UUID, list[str]] = {area.id: [] for area in area_rows}
    if area_rows:
        for row in session.execute(
            select(ServiceAreaTown.service_area_id, ServiceAreaTown.town).where(
                ServiceAreaTown.service_area_id.in_(list(towns))
            )
        ):
            towns[row.service_area_id].append(row.town)
    for area in area_rows:
        areas[area.service_id].append(area)
    return areas, towns


def _places(session: Session, ids: list[uuid.UUID]) -> tuple[Sequence, dict]:
    """The (service, location) pairs of the services, and those locations with their addresses."""
    places = session.execute(
        select(ServiceAtLocation.service_id, ServiceAtLocation.location_id).where(ServiceAtLocation.service_id.in_(ids))
    ).all()
    locations = (
        {
            location.id: location
            for location in session.scalars(
                select(Location)
                .where(Location.id.in_({place.location_id for place in places}))
                .options(selectinload(Location.addresses))
                # A location may be in the session with addresses loaded before this write changed them.
                .execution_options(populate_existing=True)
            )
        }
        if places
        else {}
    )
    return places, locations


def _batch_records(session: Session, ids: list[uuid.UUID]) -> _BatchRecords | None:
    """What the services with these ids are indexed from; None when none of them exists."""
    services = session.execute(
        select(
            Service.id,
            Service.name,
            Service.alternate_name,
            Service.description,
            Service.eligibility_description,
            Service.status,
            Service.organization_id,
            Service.program_id,
        ).where(Service.id.in_(ids))
    ).all()
    if not services:
        return None
    ids = [service.id for service in services]
    organizations, programs = _owners(session, services)
    categories = _categories(session, ids)
    terms = _terms_with_ancestors(session, {term_id for found in categories.values() for term_id in found})
    areas, towns = _areas(session, ids)
    languages: dict[uuid.UUID, list[str | None]] = {service_id: [] for service_id in ids}
    for row in session.execute(select(Language.service_id, Language.code).where(Language.service_id.in_(ids))):
        languages[row.service_id].append(row.code)
    places, locations = _places(session, ids)
    return _BatchRecords(
        services, organizations, programs, categories, terms, areas, towns, languages, places, locations
    )


def _search_row(service, batch: _BatchRecords) -> dict:
    """A service's ServiceSearch row: its weighted text fields and its tag text."""
    program, organization = batch.programs.get(service.program_id), batch.organizations.get(service.organization_id)
    own_areas, towns, categories = batch.areas[service.id], batch.towns, batch.categories[service.id]
    fields = search_fields(
        name=service.name,
        alternate_name=service.alternate_name,
        description=service.description,
        eligibility_description=service.eligibility_description,
        program_names=(program.name, program.alternate_name) if program else (),
        organization_names=(organization.name, organization.alternate_name) if organization else (),
        category_names=category_names(categories, batch.terms.get),
        areas=[AreaText(area.id, area.name, area.description, towns[area.id]) for area in own_areas],
    )
    fields["tag_text"] = tag_text(
        status=service.status,
        organization_id=service.organization_id,
        program_id=service.program_id,
        terms=ancestry(categories, batch.terms.get),
        areas=[(area.statewide, towns[area.id]) for area in own_areas],
        language_codes=batch.languages[service.id],
    )
    return {"service_id": service.id, **fields}


def _point_rows(batch: _BatchRecords) -> list[dict]:
    """A ServicePoint row per (service, location) whose location has a position."""
    point_rows = {}
    for place in batch.places:
        point = location_point(batch.locations[place.location_id])
        if point is not None:
            point_rows[(place.service_id, place.location_id)] = {
                "service_id": place.service_id,
                "location_id": place.location_id,
                "latitude": point[0],
                "longitude": point[1],
            }
    return list(point_rows.values())


def _index_batch(session: Session, ids: list[uuid.UUID]) -> int:
    """Rewrite the search and point rows of these services; returns how many exist."""
    batch = _batch_records(session, ids)
    if batch is None:
        return 0
    ids = [service.id for service in batch.services]
    search_rows = [_search_row(service, batch) for service in batch.services]
    words = set()
    for row in search_rows:
        words |= index_words(" ".join(value for key, value in row.items() if key != "service_id"))
    point_rows = _point_rows(batch)
    session.execute(delete(ServiceSearch).where(ServiceSearch.service_id.in_(ids)))
    session.execute(delete(ServicePoint).where(ServicePoint.service_id.in_(ids)))
    # Core inserts (executemany), not the ORM's bulk path.
    session.execute(insert(ServiceSearch.__table__), search_rows)
    if point_rows:
        session.execute(insert(ServicePoint.__table__), point_rows)
    remember_words(session, words)
    return len(batch.services)


def _terms_with_ancestors(session: Session, term_ids: set[uuid.UUID]) -> dict[uuid.UUID, _TermRow]:
    """The terms `term_ids` and every term above them, one query per level of the tree."""
    terms: dict[uuid.UUID, _TermRow] = {}
    wanted = set(term_ids)
    while wanted:
        found = [
            _TermRow(*row)
            for row in session.execute(
                select(TaxonomyTerm.id, TaxonomyTerm.taxonomy_id, TaxonomyTerm.name, TaxonomyTerm.parent_id).where(
                    TaxonomyTerm.id.in_(wanted)
                )
            )
        ]
        terms.update((term.id, term) for term in found)
        wanted = {term.parent_id for term in found if term.parent_id and term.parent_id not in terms}
    return terms


def reindex(session: Session, service_ids: Select) -> int:
    """Reindex the services a select of ids names (after a program, organization or term changed)."""
    ids = list(session.scalars(service_ids))
    index_services(session, ids)
    return len(ids)


def _join(*parts: str | None) -> str:
    """The parts that are not empty, joined by spaces."""
    return " ".join(part for part in parts if part)


# Words per `IN (...)` lookup: well under SQLite's limit on bound parameters.
WORDS_PER_STATEMENT = 500


def _insert_ignoring_duplicates(session: Session, model: type, rows: list[dict]) -> None:
    """Insert the rows, skipping those whose key is already there (executemany)."""
    if not rows:
        return
    insert = postgresql.insert if dialect(session) == "postgresql" else sqlite.insert
    # executemany: one compiled statement whatever the number of rows.
    session.execute(insert(model).on_conflict_do_nothing(), rows)


def remember_words(session: Session, words: set[str]) -> None:
    """Add the words not yet in `search_word` (and, on SQLite, their one-deletion variants)."""
    if not words:
        return
    ordered = sorted(words)
    known: set[str] = set()
    for start in range(0, len(ordered), WORDS_PER_STATEMENT):
        chunk = ordered[start : start + WORDS_PER_STATEMENT]
        known.update(session.scalars(select(SearchWord.word).where(SearchWord.word.in_(chunk))))
    new = [word for word in ordered if word not in known]
    _insert_ignoring_duplicates(session, SearchWord, [{"word": word} for word in new])
    if dialect(session) != "postgresql":  # PostgreSQL finds typos with pg_trgm instead
        _insert_ignoring_duplicates(
            session, SearchWordVariant, [{"variant": v, "word": word} for word in new for v in sorted(deletions(word))]
        )


def location_point(location: Location) -> tuple[float, float] | None:
    """Where a location is: its own coordinates, or the centroid of its Connecticut ZIP code."""
    if location.latitude is not None and location.longitude is not None:
        return location.latitude, location.longitude
    for address in location.addresses:
        place = geo.zip_place(address.postal_code) if address.state_province in (geo.STATE, "Connecticut") else None
        if place is not None:
            return place.latitude, place.longitude
    return None
