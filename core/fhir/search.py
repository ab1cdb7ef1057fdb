"""FHIR searches: HealthcareService through the directory's own filters, Task through the
referrals a key may see; and the searchset Bundle that answers both."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session

from core import directory, referrals
from core.fhir.common import SERVICE_TYPE
from core.fhir.params import DateBound, date_condition
from core.fhir.referrals import referral_parts_many, task
from core.paging import Page, paginate
from models import ApiClient, Service, TaxonomyTerm

# ----------------------------------------------------------------------------- HealthcareService


@dataclass
class ServiceSearch:
    """A HealthcareService search. Each list is ANDed; the values inside one entry are ORed."""

    names: list[tuple[str, str]] = field(default_factory=list)  # (modifier, text)
    categories: list[list[tuple[str | None, str]]] = field(default_factory=list)
    types: list[list[tuple[str | None, str]]] = field(default_factory=list)
    organizations: list[list[uuid.UUID]] = field(default_factory=list)
    ids: list[list[uuid.UUID]] = field(default_factory=list)
    active: bool | None = None
    last_updated: list[DateBound] = field(default_factory=list)


def _like(text: str) -> str:
    """Text for a LIKE pattern: lower case, with the pattern characters escaped by `\\`."""
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _term_ids(session: Session, tokens: list[tuple[str | None, str]], service_type: bool) -> list[uuid.UUID]:
    """The ids of the taxonomy terms the tokens name: HL7 service-type codes (`service_type`),
    else category codes (any case), of the taxonomy `urn:uuid:<taxonomy id>` when a system is
    given; a token of a system this directory does not use names nothing."""
    conditions = []
    for system, code in tokens:
        if service_type:
            if system not in (None, "", SERVICE_TYPE):
                continue
            conditions.append(TaxonomyTerm.hl7_service_type_code == code)
        else:
            condition = func.lower(TaxonomyTerm.code) == code.lower()
            if system:
                try:
                    condition = condition & (TaxonomyTerm.taxonomy_id == uuid.UUID(system.removeprefix("urn:uuid:")))
                except ValueError:
                    continue  # a code system this directory does not use
            conditions.append(condition)
    if not conditions:
        return []
    return list(session.scalars(select(TaxonomyTerm.id).where(or_(*conditions))))


def search_services(session: Session, search: ServiceSearch, page: int, per_page: int) -> Page:
    """HealthcareService search. Categories and service types go through the directory's own
    filter (`directory.matching_service_ids`), so a category also matches the categories below
    it exactly as `/services?category=` does; the FHIR-only parameters (name, ids, dates,
    active) are conditions on the service row. Ordered by name."""
    conditions = []
    if search.active is not None:
        conditions.append(Service.status == "active" if search.active else Service.status != "active")
    for tokens, is_type in [(t, False) for t in search.categories] + [(t, True) for t in search.types]:
        term_ids = _term_ids(session, tokens, service_type=is_type)
        if not term_ids:
            conditions.append(false())
            continue
        query = directory.ServiceQuery(filters=directory.ServiceFilters(taxonomy_term_ids=term_ids, statuses=[]))
        conditions.append(Service.id.in_(directory.matching_service_ids(session, query)))
    for ids in search.organizations:
        conditions.append(or_(Service.organization_id.in_(ids), Service.program_id.in_(ids)))
    for ids in search.ids:
        conditions.append(Service.id.in_(ids))
    for modifier, text in search.names:
        name = func.lower(Service.name)
        if modifier == "exact":
            conditions.append(Service.name == text)
        elif modifier == "contains":
            conditions.append(name.like(f"%{_like(text)}%", escape="\\"))
        else:  # FHIR string search: the name, or a word of it, starts with the text
            conditions.append(
                or_(name.like(f"{_like(text)}%", escape="\\"), name.like(f"% {_like(text)}%", escape="\\"))
            )
    for bound in search.last_updated:
        conditions.append(date_condition(Service.last_modified, bound))
    stmt = select(Service).where(*conditions).options(*directory.FULL_SERVICE).order_by(Service.name, Service.id)
    return paginate(session, stmt, page, per_page)


def services_owned_by(session: Session, owner_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The services whose referrals `Organization/<owner id>` receives (see `owner_id`)."""
    return list(
        session.scalars(
            select(Service.id).where(
                or_(
                    Service.program_id.in_(owner_ids),
                    Service.program_id.is_(None) & Service.organization_id.in_(owner_ids),
                )
            )
        )
    )


# ----------------------------------------------------------------------------- Task


@dataclass
class TaskSearch:
    """A Task search: the receiving Organizations (`owner`, ORed), the statuses (ORed) and the
    moment after which the referral changed (`_lastUpdated`), each ignored when empty."""

    owners: list[uuid.UUID] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    changed_after: datetime | None = None


def search_tasks(
    session: Session, client: ApiClient, search: TaskSearch, page: int, per_page: int
) -> tuple[Page, list[dict]]:
    """The referrals `client` may see, as Tasks, oldest change first; the page and its Tasks.

    The owner is the referral's own program (fixed when it was made), not its service's
    current one: a service moved to another program keeps its referrals where they are. Each
    referral read is written to the audit log (`core.referrals.list_referrals`); the caller
    commits."""
    found = referrals.list_referrals(
        session, client, search.statuses, [], search.changed_after, page, per_page, owners=search.owners
    )
    parts = referral_parts_many(session, found.contents)
    return found, [task(referral, parts[referral.id]) for referral in found.contents]


# ----------------------------------------------------------------------------- the answer


def searchset(resources: list[dict], total: int, base: str, links: dict[str, str]) -> dict:
    """A searchset Bundle: `links` maps relation (self, first, previous, next, last) to URL."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": [{"relation": relation, "url": url} for relation, url in links.items()],
        "entry": [
            {
                "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ],
    }
