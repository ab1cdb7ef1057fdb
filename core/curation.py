"""Writing the directory: upsert organizations, programs, taxonomies and services by id.

Each function takes already validated plain data, checks references against the database,
and changes only what differs, so saving the same record twice changes nothing (not even its
`last_modified`). The caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import search
from core.directory import term_and_descendants
from core.errors import InvalidData
from models import (
    Address,
    Attribute,
    Base,
    Contact,
    Language,
    Location,
    Organization,
    Phone,
    Program,
    ReferralContactPoint,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    ServiceSearch,
    Taxonomy,
    TaxonomyTerm,
    utcnow,
)

ATTRIBUTE_NAMESPACE = uuid.UUID("5f0d3b52-6f4f-4d1e-9d53-3c1b7a0f2a11")


def _assign(obj: Any, values: dict[str, Any]) -> bool:
    """Set the attributes that differ; True when any did."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def _upsert(session: Session, model: type[Base], record_id: uuid.UUID, values: dict[str, Any]) -> tuple[Any, bool]:
    obj = session.get(model, record_id)
    if obj is None:
        obj = model(id=record_id, **values)
        session.add(obj)
        return obj, True
    return obj, _assign(obj, values)


def _sync_rows(
    session: Session, model: type[Base], existing: Iterable[Any], wanted: list[dict[str, Any]], fixed: dict[str, Any]
) -> bool:
    """Make the rows of `model` owned by one parent exactly `wanted` (matched by id)."""
    changed = False
    wanted_ids = {row["id"] for row in wanted}
    for obj in list(existing):
        if obj.id not in wanted_ids:
            session.delete(obj)
            changed = True
    for row in wanted:
        values = {key: value for key, value in row.items() if key != "id"}
        _, row_changed = _upsert(session, model, row["id"], {**_with_nulls(model, values), **fixed})
        changed = changed or row_changed
    return changed


def _with_nulls(model: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    """Fill absent optional columns with None, so removing a field from a record clears it."""
    columns = {column.key for column in model.__table__.columns if column.nullable and column.key != "id"}
    return {**{column: None for column in columns}, **values}


def _own_fields(model: type[Base], data: dict[str, Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    columns = {column.key for column in model.__table__.columns} - {"id", "last_modified", *skip}
    return {key: data.get(key) for key in columns if key in data or model.__table__.c[key].nullable}


def _require(session: Session, model: type[Base], record_id: uuid.UUID | None, field: str, label: str) -> None:
    if record_id is not None and session.get(model, record_id) is None:
        raise InvalidData(f"The {label} referred to does not exist.", {field: [f"Unknown {label} id."]})


def save_taxonomy(session: Session, data: dict) -> Taxonomy:
    taxonomy, _ = _upsert(session, Taxonomy, data["id"], _own_fields(Taxonomy, data))
    return taxonomy


def save_taxonomy_term(session: Session, data: dict) -> TaxonomyTerm:
    taxonomy = session.get(Taxonomy, data["taxonomy_id"])
    if taxonomy is None:
        raise InvalidData("The taxonomy referred to does not exist.", {"taxonomy_id": ["Unknown taxonomy id."]})
    _require(session, TaxonomyTerm, data.get("parent_id"), "parent_id", "parent term")
    hl7 = data.get("hl7_service_type") or {}
    values = _own_fields(TaxonomyTerm, data, skip=("hl7_service_type_code", "hl7_service_type_display", "taxonomy"))
    values.update(
        taxonomy=taxonomy.name,
        hl7_service_type_code=hl7.get("code"),
        hl7_service_type_display=hl7.get("display"),
    )
    term, changed = _upsert(session, TaxonomyTerm, data["id"], values)
    if changed:
        session.flush()
        below = term_and_descendants([term.id])
        search.reindex(
            session,
            select(Attribute.link_id).where(Attribute.link_entity == "service", Attribute.taxonomy_term_id.in_(below)),
        )
    return term


def _save_location(session: Session, data: dict, organization_id: uuid.UUID) -> bool:
    values = _own_fields(Location, data)
    values["organization_id"] = organization_id
    location, changed = _upsert(session, Location, data["id"], values)
    session.flush()
    changed |= _sync_rows(session, Address, location.addresses, data["addresses"], {"location_id": location.id})
    changed |= _sync_rows(
        session,
        Phone,
        location.phones,
        data["phones"],
        {"location_id": location.id, "organization_id": organization_id},
    )
    return changed


def save_organization(session: Session, data: dict) -> Organization:
    _require(session, Organization, data.get("parent_organization_id"), "parent_organization_id", "organization")
    organization, changed = _upsert(session, Organization, data["id"], _own_fields(Organization, data))
    session.flush()
    changed |= _sync_rows(session, Phone, organization.phones, data["phones"], {"organization_id": organization.id})
    for location in data["locations"]:
        changed |= _save_location(session, location, organization.id)
    if changed:
        organization.last_modified = utcnow()
        session.flush()
        search.reindex(session, select(Service.id).where(Service.organization_id == organization.id))
    return organization


def save_program(session: Session, data: dict) -> Program:
    _require(session, Organization, data["organization_id"], "organization_id", "organization")
    clash = session.scalar(select(Program).where(Program.slug == data["slug"], Program.id != data["id"]))
    if clash is not None:
        raise InvalidData("Another program has this slug.", {"slug": ["Already used by another program."]})
    program, changed = _upsert(session, Program, data["id"], _own_fields(Program, data))
    if changed:
        program.last_modified = utcnow()
        session.flush()
        search.reindex(session, select(Service.id).where(Service.program_id == program.id))
    return program


def _terms_by_code(session: Session, codes: list[str]) -> dict[str, TaxonomyTerm]:
    found = session.scalars(select(TaxonomyTerm).where(TaxonomyTerm.code.in_(codes)))
    terms = {term.code: term for term in found if term.code is not None}  # none is: the codes matched
    unknown = sorted(set(codes) - set(terms))
    if unknown:
        raise InvalidData("A category code is not in any taxonomy.", {"categories": ["Unknown category code."]})
    return terms


def save_service(session: Session, data: dict) -> Service:
    _require(session, Organization, data["organization_id"], "organization_id", "organization")
    program_id = data.get("program_id")
    if program_id is not None:
        program = session.get(Program, program_id)
        if program is None:
            raise InvalidData("The program referred to does not exist.", {"program_id": ["Unknown program id."]})
        if program.organization_id != data["organization_id"]:
            raise InvalidData(
                "The program belongs to another organization.", {"program_id": ["Not a program of this organization."]}
            )
    for location_id in data["location_ids"]:
        _require(session, Location, location_id, "location_ids", "location")

    service, changed = _upsert(session, Service, data["id"], _own_fields(Service, data))
    session.flush()
    sid = service.id
    changed |= _sync_rows(session, Phone, service.phones, data["phones"], {"service_id": sid})
    changed |= _sync_rows(session, Language, service.languages, data["languages"], {"service_id": sid})
    changed |= _sync_rows(
        session,
        ReferralContactPoint,
        service.referral_contact_points,
        data["referral_contact_points"],
        {"service_id": sid},
    )
    changed |= _sync_contacts(session, service, data["contacts"])
    changed |= _sync_service_areas(session, service, data["service_areas"])
    changed |= _sync_categories(session, service, data["categories"])
    changed |= _sync_locations(session, service, data["location_ids"])
    if changed:
        service.last_modified = utcnow()
    session.flush()
    if changed or session.scalar(select(ServiceSearch.id).where(ServiceSearch.service_id == sid)) is None:
        search.index_service(session, sid)
    return service


def _sync_contacts(session: Session, service: Service, contacts: list[dict]) -> bool:
    changed = _sync_rows(
        session,
        Contact,
        service.contacts,
        [{k: v for k, v in c.items() if k != "phones"} for c in contacts],
        {"service_id": service.id},
    )
    session.flush()
    for contact_data in contacts:
        contact = session.get_one(Contact, contact_data["id"])  # synced and flushed just above
        changed |= _sync_rows(
            session, Phone, contact.phones, contact_data["phones"], {"contact_id": contact.id, "service_id": service.id}
        )
    return changed


def _sync_service_areas(session: Session, service: Service, areas: list[dict]) -> bool:
    changed = _sync_rows(
        session,
        ServiceArea,
        service.service_areas,
        [{k: v for k, v in a.items() if k != "towns"} for a in areas],
        {"service_id": service.id},
    )
    session.flush()
    for area_data in areas:
        area = session.get_one(ServiceArea, area_data["id"])  # synced and flushed just above
        wanted = sorted(set(area_data["towns"]))
        if sorted(town.town for town in area.towns) != wanted:
            area.towns = [ServiceAreaTown(town=town) for town in wanted]
            changed = True
    return changed


def _sync_categories(session: Session, service: Service, codes: list[str]) -> bool:
    terms = _terms_by_code(session, codes)
    wanted = [
        {
            "id": uuid.uuid5(ATTRIBUTE_NAMESPACE, f"{service.id}:{terms[code].id}"),
            "link_id": service.id,
            "link_type": "service_category",
            "link_entity": "service",
            "taxonomy_term_id": terms[code].id,
        }
        for code in dict.fromkeys(codes)
    ]
    return _sync_rows(session, Attribute, service.attributes, wanted, {})


def _sync_locations(session: Session, service: Service, location_ids: list[uuid.UUID]) -> bool:
    wanted = [
        {"id": uuid.uuid5(ATTRIBUTE_NAMESPACE, f"sal:{service.id}:{location_id}"), "location_id": location_id}
        for location_id in dict.fromkeys(location_ids)
    ]
    return _sync_rows(session, ServiceAtLocation, service.service_at_locations, wanted, {"service_id": service.id})
