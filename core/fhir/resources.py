"""The directory as FHIR resources: a service as a HealthcareService, an HSDS organization
and a program as an Organization, a location as a Location; and the reads that find the
records `Organization/<id>` and `Location/<id>` name."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core import directory, editing
from core.errors import NotFound
from core.fhir.common import (
    CANONICAL,
    CAPACITY_DISPLAY,
    EXT_CAPACITY,
    LANGUAGE,
    ORGANIZATION_TYPE,
    REFERRAL_METHOD,
    REFERRAL_METHOD_OF_CHANNEL,
    SDOHCC_CODES,
    SERVICE_TYPE,
    TELECOM_OF_CHANNEL,
    clean,
    meta,
    owner_id,
)
from models import Location, Organization, Program, Service, TaxonomyTerm

# ----------------------------------------------------------------------------- elements


def _telecom_of_phones(phones) -> list[dict]:
    """HSDS phones as ContactPoints, their type mapped to a FHIR telecom system."""
    system = {"fax": "fax", "text": "sms", "pager": "pager", "cell": "phone", "voice": "phone"}
    return [{"system": system.get(p.type or "voice", "phone"), "value": p.number, "use": "work"} for p in phones]


def _dedupe(items: list[dict]) -> list[dict]:
    """The items, each once, in their first order."""
    seen, out = set(), []
    for item in items:
        key = repr(sorted(item.items()))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _address(address) -> dict:
    """An HSDS address as a FHIR Address (work use)."""
    return {
        "use": "work",
        "type": {"physical": "physical", "postal": "postal"}.get(address.address_type, "both"),
        "line": [line for line in (address.address_1, address.address_2) if line],
        "city": address.city,
        "district": address.region,
        "state": address.state_province,
        "postalCode": address.postal_code,
        "country": address.country,
    }


# ----------------------------------------------------------------------------- directory


def category_system(term: TaxonomyTerm) -> str | None:
    """The code system of a category: its taxonomy, as `urn:uuid:<taxonomy id>`."""
    return f"urn:uuid:{term.taxonomy_id}" if term.taxonomy_id else None


def _capacity_extension(capacity: str) -> list[dict]:
    """The SDOH Clinical Care capacity-status extension, when the status is one it codes."""
    if capacity not in CAPACITY_DISPLAY:
        return []
    concept = {"coding": [{"system": SDOHCC_CODES, "code": capacity, "display": CAPACITY_DISPLAY[capacity]}]}
    return [{"url": EXT_CAPACITY, "extension": [{"url": "capacityStatus", "valueCodeableConcept": concept}]}]


def _service_contacts(service: Service) -> tuple[list[dict], list[dict]]:
    """A service's telecom (phones, web site, email, contact points) and its referral methods
    (the channels of its referral contact points, and this API when it takes referrals)."""
    telecom = _telecom_of_phones(service.phones)
    if service.url:
        telecom.append({"system": "url", "value": service.url, "use": "work"})
    if service.email:
        telecom.append({"system": "email", "value": service.email, "use": "work"})
    methods = []
    for point in service.referral_contact_points:
        if point.channel in TELECOM_OF_CHANNEL:
            telecom.append({"system": TELECOM_OF_CHANNEL[point.channel], "value": point.value, "use": "work"})
        if point.purpose == "referral" and point.channel in REFERRAL_METHOD_OF_CHANNEL:
            code, display = REFERRAL_METHOD_OF_CHANNEL[point.channel]
            methods.append({"coding": [{"system": REFERRAL_METHOD, "code": code, "display": display}]})
    if service.accepts_referrals:  # this API takes electronic referrals for it
        methods.append({"coding": [{"system": REFERRAL_METHOD, "code": "elec", "display": "Secure Messaging"}]})
    return _dedupe(telecom), _dedupe(methods)


def _categories(terms: list[TaxonomyTerm]) -> list[dict]:
    """A service's categories as CodeableConcepts under their taxonomy's system."""
    return [
        {"coding": [{"system": category_system(term), "code": term.code, "display": term.name}], "text": term.name}
        for term in terms
    ]


def _service_types(terms: list[TaxonomyTerm]) -> list[dict]:
    """The HL7 service types the categories cross-walk to, each once."""
    return _dedupe(
        [
            {
                "coding": [
                    {
                        "system": SERVICE_TYPE,
                        "code": term.hl7_service_type_code,
                        "display": term.hl7_service_type_display,
                    }
                ]
            }
            for term in terms
            if term.hl7_service_type_code
        ]
    )


def _communication(service: Service) -> list[dict]:
    """The languages of a service, as BCP 47 codes."""
    return [
        {"coding": [{"system": LANGUAGE, "code": language.code, "display": language.name}], "text": language.name}
        for language in service.languages
        if language.code
    ]


def healthcare_service(service: Service) -> dict:
    """A service as a HealthcareService (load it with `directory.FULL_SERVICE`)."""
    terms = [attribute.taxonomy_term for attribute in service.attributes]
    telecom, methods = _service_contacts(service)
    provider = service.program or service.organization
    return clean(
        {
            "resourceType": "HealthcareService",
            "id": str(service.id),
            "meta": meta(service.last_modified),
            "extension": _capacity_extension(editing.capacity_status(service)),
            "active": service.status == "active",
            "providedBy": {
                "reference": f"Organization/{owner_id(service.program_id, service.organization_id)}",
                "display": provider.name if provider is not None else None,
            },
            "category": _categories(terms),
            "type": _service_types(terms),
            "location": [
                {"reference": f"Location/{sal.location_id}", "display": sal.location.name}
                for sal in service.service_at_locations
            ],
            "name": service.name,
            "comment": service.description,
            "extraDetails": service.application_process,
            "telecom": telecom,
            "coverageArea": [{"display": area.name or area.description} for area in service.service_areas],
            "eligibility": [{"comment": service.eligibility_description}] if service.eligibility_description else [],
            "program": [{"text": service.program.name}] if service.program is not None else [],
            "communication": _communication(service),
            "referralMethod": methods,
        }
    )


def organization(record: Organization) -> dict:
    """An HSDS organization as an Organization."""
    addresses = [address for location in record.locations for address in location.addresses]
    telecom = _telecom_of_phones(record.phones)
    if record.email:
        telecom.append({"system": "email", "value": record.email, "use": "work"})
    if record.website:
        telecom.append({"system": "url", "value": record.website, "use": "work"})
    return clean(
        {
            "resourceType": "Organization",
            "id": str(record.id),
            "meta": meta(record.last_modified),
            "active": True,
            "name": record.name,
            "alias": [record.alternate_name] if record.alternate_name else [],
            "telecom": telecom,
            "address": [_address(address) for address in addresses],
            "partOf": {"reference": f"Organization/{record.parent_organization_id}"}
            if record.parent_organization_id
            else None,
        }
    )


def program_organization(program: Program) -> dict:
    """A program as an Organization (a department of its organization): the owner of the
    referrals to its services."""
    return clean(
        {
            "resourceType": "Organization",
            "id": str(program.id),
            "meta": meta(program.last_modified),
            "identifier": [{"system": f"{CANONICAL}/program", "value": program.slug}],
            "active": True,
            "type": [{"coding": [{"system": ORGANIZATION_TYPE, "code": "dept", "display": "Hospital Department"}]}],
            "name": program.name,
            "alias": [program.alternate_name] if program.alternate_name else [],
            "partOf": {"reference": f"Organization/{program.organization_id}", "display": program.organization.name},
        }
    )


def location(record: Location) -> dict:
    """A location as a Location: its physical address (else its first), position and managing Organization."""
    physical = [a for a in record.addresses if a.address_type == "physical"] or list(record.addresses)
    position = None
    if record.latitude is not None and record.longitude is not None:
        position = {"latitude": record.latitude, "longitude": record.longitude}
    return clean(
        {
            "resourceType": "Location",
            "id": str(record.id),
            "status": "active",
            "name": record.name,
            "alias": [record.alternate_name] if record.alternate_name else [],
            "description": record.description,
            "mode": "instance",
            "telecom": _telecom_of_phones(record.phones)
            + ([{"system": "url", "value": record.url}] if record.url else []),
            "address": _address(physical[0]) if physical else None,
            "physicalType": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                        "code": "vi" if record.location_type == "virtual" else "bu",
                        "display": "Virtual" if record.location_type == "virtual" else "Building",
                    }
                ]
            },
            "position": position,
            "managingOrganization": {"reference": f"Organization/{record.organization_id}"}
            if record.organization_id
            else None,
        }
    )


def get_location(session: Session, location_id: uuid.UUID) -> Location:
    """The location `Location/<id>` names, loaded for `location` (NotFound otherwise)."""
    record = session.scalar(select(Location).where(Location.id == location_id).options(*directory.FULL_LOCATION))
    if record is None:
        raise NotFound("No location has this id.")
    return record


def organization_resource(session: Session, organization_id: uuid.UUID) -> dict:
    """The resource `Organization/<id>` names: an HSDS organization, or a program."""
    try:
        return organization(directory.get_organization(session, organization_id, full_service=False))
    except NotFound:
        pass
    program = session.scalar(
        select(Program).where(Program.id == organization_id).options(selectinload(Program.organization))
    )
    if program is None:
        raise NotFound("No organization has this id.")
    return program_organization(program)
