"""Reading the directory: lists with HSDS filters, and single records by id."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, selectinload

from core.errors import NotFound
from core.paging import Page, paginate
from models import (
    Attribute,
    Contact,
    Location,
    Organization,
    Program,
    ReferralContactPoint,
    Service,
    ServiceAtLocation,
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
    taxonomy_ids: list[uuid.UUID] = field(default_factory=list)
    statuses: list[str] = field(default_factory=lambda: ["active"])
    modified_after: datetime | None = None


def term_and_descendants(session: Session, term_ids: list[uuid.UUID]) -> Select:
    """A select of the ids of the given terms and every term below them."""
    tree = select(TaxonomyTerm.id).where(TaxonomyTerm.id.in_(term_ids)).cte("term_tree", recursive=True)
    tree = tree.union(select(TaxonomyTerm.id).where(TaxonomyTerm.parent_id == tree.c.id))
    return select(tree.c.id)


def _services_with_terms(term_ids: Select) -> Select:
    return select(Attribute.link_id).where(
        Attribute.link_entity == "service", Attribute.taxonomy_term_id.in_(term_ids)
    )


def filter_services(session: Session, stmt: Select, filters: ServiceFilters) -> Select:
    """Apply `filters` to a select that has `Service` in its FROM clause."""
    if filters.organization_ids:
        stmt = stmt.where(Service.organization_id.in_(filters.organization_ids))
    if filters.program_ids:
        stmt = stmt.where(Service.program_id.in_(filters.program_ids))
    if filters.statuses:
        stmt = stmt.where(Service.status.in_(filters.statuses))
    if filters.modified_after is not None:
        stmt = stmt.where(Service.last_modified >= filters.modified_after)
    if filters.taxonomy_term_ids:
        stmt = stmt.where(
            Service.id.in_(_services_with_terms(term_and_descendants(session, filters.taxonomy_term_ids)))
        )
    if filters.taxonomy_ids:
        in_taxonomy = select(TaxonomyTerm.id).where(TaxonomyTerm.taxonomy_id.in_(filters.taxonomy_ids))
        stmt = stmt.where(Service.id.in_(_services_with_terms(in_taxonomy)))
    return stmt


def list_services(session: Session, filters: ServiceFilters, page: int, per_page: int, full: bool) -> Page:
    stmt = filter_services(session, select(Service), filters)
    stmt = stmt.options(*(FULL_SERVICE if full else BRIEF_SERVICE)).order_by(Service.name, Service.id)
    return paginate(session, stmt, page, per_page)


def get_service(session: Session, service_id: uuid.UUID) -> Service:
    service = session.scalar(select(Service).where(Service.id == service_id).options(*FULL_SERVICE))
    if service is None:
        raise NotFound("No service has this id.")
    return service


def list_service_at_locations(
    session: Session, filters: ServiceFilters, page: int, per_page: int, full: bool
) -> Page:
    stmt = select(ServiceAtLocation).join(Service, ServiceAtLocation.service_id == Service.id)
    stmt = filter_services(session, stmt, filters)
    options = [selectinload(ServiceAtLocation.service), selectinload(ServiceAtLocation.location).options(*FULL_LOCATION)]
    if full:
        options += [
            selectinload(ServiceAtLocation.phones),
            selectinload(ServiceAtLocation.schedules),
            selectinload(ServiceAtLocation.contacts).selectinload(Contact.phones),
        ]
    stmt = stmt.options(*options).order_by(Service.name, ServiceAtLocation.id)
    return paginate(session, stmt, page, per_page)


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


def list_programs(session: Session, organization_ids: list[uuid.UUID], page: int, per_page: int) -> Page:
    stmt = select(Program).options(selectinload(Program.organization), selectinload(Program.services))
    if organization_ids:
        stmt = stmt.where(Program.organization_id.in_(organization_ids))
    return paginate(session, stmt.order_by(Program.name, Program.id), page, per_page)


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
