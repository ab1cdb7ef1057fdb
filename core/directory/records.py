"""The directory's other records: locations, organizations, programs, taxonomies, taxonomy
terms and referral contact points, as pages, streams and single records."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from core import search, tags
from core.directory.loading import FULL_LOCATION, FULL_SERVICE, contains_words, stream_entities
from core.errors import NotFound
from core.paging import Page, paginate
from models import (
    Contact,
    Location,
    Organization,
    Program,
    ReferralContactPoint,
    Service,
    Taxonomy,
    TaxonomyTerm,
)


def list_locations(session: Session, organization_ids: list[uuid.UUID], page: int, per_page: int) -> Page:
    """Locations by name, with their addresses, phones and languages."""
    stmt = select(Location).options(*FULL_LOCATION)
    if organization_ids:
        stmt = stmt.where(Location.organization_id.in_(organization_ids))
    return paginate(session, stmt.order_by(Location.name, Location.id), page, per_page)


def get_location(session: Session, location_id: uuid.UUID) -> Location:
    """A location with its addresses, phones and languages (NotFound otherwise)."""
    location = session.scalar(select(Location).where(Location.id == location_id).options(*FULL_LOCATION))
    if location is None:
        raise NotFound("No location has this id.")
    return location


def _organization_options(full_service: bool):
    """Loader options of a full organization; its services full or brief."""
    services = selectinload(Organization.services)
    return (
        selectinload(Organization.phones),
        selectinload(Organization.contacts).selectinload(Contact.phones),
        selectinload(Organization.locations).options(*FULL_LOCATION),
        selectinload(Organization.programs),
        services.options(*FULL_SERVICE) if full_service else services,
    )


def _best_active_service(session: Session, terms, owner_column) -> Subquery:
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
    order: list[ColumnElement[Any] | InstrumentedAttribute[Any]] = [Organization.name, Organization.id]
    own = contains_words([Organization.name, Organization.alternate_name, Organization.description], search_text)
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
    """A page of organizations (see `_organizations` for the order and the search)."""
    stmt = _organizations(session, search_text)
    if full or full_service:
        stmt = stmt.options(*_organization_options(full_service))
    return paginate(session, stmt, page, per_page)


def stream_organizations(
    session: Session, full: bool, full_service: bool, search_text: str | None = None
) -> Iterator[list]:
    """Every organization `list_organizations` would page through, in batches."""
    options = _organization_options(full_service) if full or full_service else ()
    return stream_entities(session, _organizations(session, search_text), Organization, options)


def get_organization(session: Session, organization_id: uuid.UUID, full_service: bool) -> Organization:
    """An organization with its phones, contacts, locations, programs and services."""
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
    order: list[ColumnElement[Any] | InstrumentedAttribute[Any]] = [Program.name, Program.id]
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
    own = contains_words([Taxonomy.name, Taxonomy.description], search_text)
    if own is not None:
        stmt = stmt.where(own)
    return stmt.order_by(Taxonomy.name, Taxonomy.id)


def list_taxonomies(session: Session, page: int, per_page: int, search_text: str | None = None) -> Page:
    """A page of taxonomies by name."""
    return paginate(session, _taxonomies(search_text), page, per_page)


def stream_taxonomies(session: Session, search_text: str | None = None) -> Iterator[list]:
    """Every taxonomy `list_taxonomies` would page through, in batches."""
    return stream_entities(session, _taxonomies(search_text), Taxonomy)


def get_taxonomy(session: Session, taxonomy_id: uuid.UUID) -> Taxonomy:
    """A taxonomy by id (NotFound otherwise)."""
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
    """Taxonomy terms by code, filtered."""
    stmt = select(TaxonomyTerm)
    if filters.taxonomy_ids:
        stmt = stmt.where(TaxonomyTerm.taxonomy_id.in_(filters.taxonomy_ids))
    if filters.parent_ids:
        stmt = stmt.where(TaxonomyTerm.parent_id.in_(filters.parent_ids))
    if filters.top_only:
        stmt = stmt.where(TaxonomyTerm.parent_id.is_(None))
    own = contains_words([TaxonomyTerm.name, TaxonomyTerm.code, TaxonomyTerm.description], filters.search)
    if own is not None:
        stmt = stmt.where(own)
    return stmt.order_by(TaxonomyTerm.code, TaxonomyTerm.id)


def list_taxonomy_terms(session: Session, filters: TermFilters, page: int, per_page: int) -> Page:
    """A page of taxonomy terms by code."""
    return paginate(session, _taxonomy_terms(filters), page, per_page)


def stream_taxonomy_terms(session: Session, filters: TermFilters) -> Iterator[list]:
    """Every term `list_taxonomy_terms` would page through, in batches."""
    return stream_entities(session, _taxonomy_terms(filters), TaxonomyTerm)


def get_taxonomy_term(session: Session, term_id: uuid.UUID) -> TaxonomyTerm:
    """A taxonomy term with its taxonomy (NotFound otherwise)."""
    term = session.scalar(
        select(TaxonomyTerm).where(TaxonomyTerm.id == term_id).options(selectinload(TaxonomyTerm.taxonomy_detail))
    )
    if term is None:
        raise NotFound("No taxonomy term has this id.")
    return term


@dataclass
class ContactPointFilters:
    """Referral contact point filters. Values within one list are ORed; the lists are ANDed."""

    service_ids: list[uuid.UUID] = field(default_factory=list)
    program_ids: list[uuid.UUID] = field(default_factory=list)
    audiences: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    purposes: list[str] = field(default_factory=list)


def list_referral_contact_points(session: Session, filters: ContactPointFilters, page: int, per_page: int) -> Page:
    """A page of referral contact points, by service name, purpose and channel."""
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
    stmt = stmt.order_by(
        Service.name, ReferralContactPoint.purpose, ReferralContactPoint.channel, ReferralContactPoint.id
    )
    return paginate(session, stmt, page, per_page)
