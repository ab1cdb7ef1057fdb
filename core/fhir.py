"""HL7 FHIR R4 (4.0.1) views of the directory and of referrals, and referrals from FHIR.

Pure mapping functions turn the models into FHIR JSON dicts; a few queries answer FHIR
searches through the directory's own filters; `referral_from_bundle` turns a transaction
Bundle into the plain request dict that `/referrals` validates and `core.referrals` takes.

Mapping decisions (the README's "For FHIR integrators" section says the same to partners):

- Ids are the records' UUIDs: HealthcareService, Location and Organization share them with
  HSDS; a referral is both `ServiceRequest/<id>` and `Task/<id>`.
- An HSDS organization is an `Organization`; so is each program (`Organization/<program id>`,
  `partOf` its organization), because a program is the team that receives a referral. A
  service's `providedBy` and a referral Task's `owner` are its program (or its organization
  when it has no program).
- The sending API client is the Task's `requester`: a logical reference to an Organization,
  identified by the client's UUID as `urn:uuid:<client id>` (system `urn:ietf:rfc:3986`).
- Categories carry the taxonomy's code under the system `urn:uuid:<taxonomy id>`;
  the HL7 service-type cross-walk of a category becomes `HealthcareService.type`.
- The child, guardian, consent and referrer are contained in the ServiceRequest (Patient,
  RelatedPerson, Consent, PractitionerRole), the child also in the Task: exactly what
  `GET /referrals/{id}` gives the same key, nothing more.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from core import directory, editing, json_patch
from core.errors import DomainError, InvalidData, NotFound
from core.paging import Page, paginate
from models import (
    ApiClient,
    Location,
    Organization,
    Program,
    Referral,
    Service,
    TaxonomyTerm,
)
from models.vocab import GUARDIAN_RELATIONSHIPS, REFERRAL_STATUSES
from schemas.text import RANGE_MESSAGE, datetime_problem, first_text_problem

FHIR_VERSION = "4.0.1"
MEDIA_TYPE = "application/fhir+json"
CAPABILITY_DATE = "2026-11-21"

# Canonical base of this API's own extensions (a name, not an address that must resolve).
CANONICAL = "https://www.connecticutchildrens.org/fhir/occh"
EXT_MAY_LEAVE_MESSAGE = f"{CANONICAL}/StructureDefinition/may-leave-message"
EXT_CONSENT = f"{CANONICAL}/StructureDefinition/referral-consent"
# On an erased referral: when its family's data was erased (the personal elements are then absent).
EXT_ERASED = f"{CANONICAL}/StructureDefinition/referral-erased"

# SDOH Clinical Care (STU 3): a HealthcareService's capacity status, a complex extension.
EXT_CAPACITY = "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-ExtensionHealthcareServiceCapacityStatus"
SDOHCC_CODES = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
CAPACITY_DISPLAY = {
    "capacity": "Has Capacity",
    "no-capacity": "No Capacity",
    "waitlist": "No Capacity - Has Waitlist",
    "additional-assessment-required": "Additional Assessment Required",
}
URI_SYSTEM = "urn:ietf:rfc:3986"
SERVICE_TYPE = "http://terminology.hl7.org/CodeSystem/service-type"
REFERRAL_METHOD = "http://terminology.hl7.org/CodeSystem/service-referral-method"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
LANGUAGE = "urn:ietf:bcp:47"

# Guardian relationships as HL7 v3 RoleCode (the family-member codes FHIR uses).
ROLE_OF = {
    "mother": ("MTH", "mother"),
    "father": ("FTH", "father"),
    "parent": ("PRN", "parent"),
    "grandparent": ("GRPRN", "grandparent"),
    "foster-parent": ("PRNFOST", "foster parent"),
    "legal-guardian": ("GUARD", "guardian"),
    "relative": ("FAMMEMB", "family member"),
    "self": ("ONESELF", "self"),
}
RELATIONSHIP_OF = {code: name for name, (code, _) in ROLE_OF.items()}

# ServiceRequest.status from the referral (Task) status.
REQUEST_STATUS = {
    "requested": "active",
    "accepted": "active",
    "in-progress": "active",
    "on-hold": "on-hold",
    "completed": "completed",
    "rejected": "revoked",
    "failed": "revoked",
    "cancelled": "revoked",
    "entered-in-error": "entered-in-error",
}
BUSINESS_STATUS = {
    "requested": "Waiting for the program to accept the referral",
    "accepted": "Accepted; the program will contact the family",
    "rejected": "Declined by the program",
    "in-progress": "The program is working with the family",
    "on-hold": "On hold",
    "completed": "Closed: the family was served",
    "failed": "Closed: the family could not be served",
    "cancelled": "Cancelled by the sender",
    "entered-in-error": "Entered in error",
}
TELECOM_OF_CHANNEL = {"phone": "phone", "fax": "fax", "email": "email", "web": "url"}
REFERRAL_METHOD_OF_CHANNEL = {"phone": ("phone", "Phone"), "fax": ("fax", "Fax"), "web": ("elec", "Secure Messaging"),
                              "email": ("semail", "Secure Email")}


class InvalidResource(DomainError):
    """A FHIR request that cannot be processed as sent (400): not a Bundle, entries missing,
    references that resolve to nothing. `errors` maps a FHIR path to its messages."""

    code = "invalid_resource"


# ----------------------------------------------------------------------------- small helpers


def instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _clean(resource: dict) -> dict:
    """Drop empty values: FHIR forbids empty elements (and `null`)."""
    out = {}
    for key, value in resource.items():
        if isinstance(value, dict):
            value = _clean(value)
        elif isinstance(value, list):
            value = [_clean(v) if isinstance(v, dict) else v for v in value]
            value = [v for v in value if v not in (None, "", {}, [])]
        if value not in (None, "", {}, []):
            out[key] = value
    return out


def _meta(last_updated: datetime | None, version: int | None = None) -> dict:
    return {"versionId": str(version) if version is not None else None, "lastUpdated": instant(last_updated)}


def _telecom_of_phones(phones) -> list[dict]:
    system = {"fax": "fax", "text": "sms", "pager": "pager", "cell": "phone", "voice": "phone"}
    return [{"system": system.get(p.type or "voice", "phone"), "value": p.number, "use": "work"} for p in phones]


def _dedupe(items: list[dict]) -> list[dict]:
    seen, out = set(), []
    for item in items:
        key = repr(sorted(item.items()))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def owner_id(service_program_id: uuid.UUID | None, organization_id: uuid.UUID) -> uuid.UUID:
    """The Organization that receives a service's referrals: its program, else its organization."""
    return service_program_id or organization_id


def _address(address) -> dict:
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
    return f"urn:uuid:{term.taxonomy_id}" if term.taxonomy_id else None


def healthcare_service(service: Service) -> dict:
    """A service as a HealthcareService (load it with `directory.FULL_SERVICE`)."""
    terms = [attribute.taxonomy_term for attribute in service.attributes]
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
    provider = service.program or service.organization
    capacity = editing.capacity_status(service)
    return _clean(
        {
            "resourceType": "HealthcareService",
            "id": str(service.id),
            "meta": _meta(service.last_modified),
            "extension": [
                {
                    "url": EXT_CAPACITY,
                    "extension": [
                        {
                            "url": "capacityStatus",
                            "valueCodeableConcept": {
                                "coding": [{"system": SDOHCC_CODES, "code": capacity, "display": CAPACITY_DISPLAY[capacity]}]
                            },
                        }
                    ],
                }
            ] if capacity in CAPACITY_DISPLAY else [],
            "active": service.status == "active",
            "providedBy": {
                "reference": f"Organization/{owner_id(service.program_id, service.organization_id)}",
                "display": provider.name if provider is not None else None,
            },
            "category": [
                {
                    "coding": [{"system": category_system(term), "code": term.code, "display": term.name}],
                    "text": term.name,
                }
                for term in terms
            ],
            "type": _dedupe(
                [
                    {
                        "coding": [
                            {"system": SERVICE_TYPE, "code": term.hl7_service_type_code, "display": term.hl7_service_type_display}
                        ]
                    }
                    for term in terms
                    if term.hl7_service_type_code
                ]
            ),
            "location": [
                {"reference": f"Location/{sal.location_id}", "display": sal.location.name}
                for sal in service.service_at_locations
            ],
            "name": service.name,
            "comment": service.description,
            "extraDetails": service.application_process,
            "telecom": _dedupe(telecom),
            "coverageArea": [{"display": area.name or area.description} for area in service.service_areas],
            "eligibility": [{"comment": service.eligibility_description}] if service.eligibility_description else [],
            "program": [{"text": service.program.name}] if service.program is not None else [],
            "communication": [
                {"coding": [{"system": LANGUAGE, "code": language.code, "display": language.name}], "text": language.name}
                for language in service.languages
                if language.code
            ],
            "referralMethod": _dedupe(methods),
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
    return _clean(
        {
            "resourceType": "Organization",
            "id": str(record.id),
            "meta": _meta(record.last_modified),
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
    return _clean(
        {
            "resourceType": "Organization",
            "id": str(program.id),
            "meta": _meta(program.last_modified),
            "identifier": [{"system": f"{CANONICAL}/program", "value": program.slug}],
            "active": True,
            "type": [{"coding": [{"system": ORGANIZATION_TYPE, "code": "dept", "display": "Hospital Department"}]}],
            "name": program.name,
            "alias": [program.alternate_name] if program.alternate_name else [],
            "partOf": {"reference": f"Organization/{program.organization_id}", "display": program.organization.name},
        }
    )


def location(record: Location) -> dict:
    physical = [a for a in record.addresses if a.address_type == "physical"] or list(record.addresses)
    position = None
    if record.latitude is not None and record.longitude is not None:
        position = {"latitude": record.latitude, "longitude": record.longitude}
    return _clean(
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


# ----------------------------------------------------------------------------- search values


@dataclass
class DateBound:
    """A FHIR date search value: a prefix and the range its precision covers [low, high)."""

    prefix: str
    low: datetime
    high: datetime


DATE_VALUE = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb)?(\d{4}(?:-\d{2}(?:-\d{2})?)?(?:T.+)?)$")


def parse_date(value: str) -> DateBound:
    """`gt2026-01-01T00:00:00Z`, `ge2026-01`, `2026-01-01`... Times without an offset are UTC.
    ValueError for a value that is not one, or falls outside the years the API stores
    (schemas.text.datetime_problem, after conversion to UTC)."""
    try:
        bound = _parse_date(value)
    except OverflowError:
        raise ValueError(RANGE_MESSAGE) from None
    if datetime_problem(bound.low):
        raise ValueError(RANGE_MESSAGE)
    return DateBound(bound.prefix, bound.low.astimezone(timezone.utc), bound.high.astimezone(timezone.utc))


def _parse_date(value: str) -> DateBound:
    match = DATE_VALUE.match(value.strip())
    if not match:
        raise ValueError("Not a FHIR date search value.")
    prefix, text = match.group(1) or "eq", match.group(2)
    if "T" in text:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return DateBound(prefix, moment, moment)
    parts = [int(p) for p in text.split("-")]
    if len(parts) == 1:
        low, high = date(parts[0], 1, 1), date(parts[0] + 1, 1, 1)
    elif len(parts) == 2:
        low = date(parts[0], parts[1], 1)
        high = date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
    else:
        low = date(*parts)
        high = low + timedelta(days=1)
    as_utc = lambda d: datetime.combine(d, time(0), tzinfo=timezone.utc)  # noqa: E731
    return DateBound(prefix, as_utc(low), as_utc(high))


def date_condition(column, bound: DateBound):
    """The WHERE clause of one date search value on `column`."""
    point = bound.low == bound.high
    if bound.prefix in ("gt", "sa"):
        return column > bound.high if point else column >= bound.high
    if bound.prefix == "ge":
        return column >= bound.low
    if bound.prefix in ("lt", "eb"):
        return column < bound.low
    if bound.prefix == "le":
        return column <= bound.high if point else column < bound.high
    if bound.prefix == "ne":
        return column != bound.low if point else or_(column < bound.low, column >= bound.high)
    return column == bound.low if point else (column >= bound.low) & (column < bound.high)


def changed_after(bound: DateBound) -> datetime:
    """The strict lower bound `core.referrals.list_referrals` takes, for the prefixes that
    have one (gt, sa, ge)."""
    if bound.prefix in ("gt", "sa"):
        return bound.high if bound.low == bound.high else bound.high - timedelta(microseconds=1)
    if bound.prefix == "ge":
        return bound.low - timedelta(microseconds=1)
    raise ValueError("Only gt, sa and ge are supported here.")


def split_token(value: str) -> tuple[str | None, str]:
    """`system|code`, `|code` or `code`."""
    if "|" in value:
        system, code = value.split("|", 1)
        return system, code
    return None, value


def reference_id(value: str, resource_type: str) -> uuid.UUID:
    """`Organization/<id>`, a full URL ending so, or a bare id; ValueError when malformed."""
    text = value.strip().rstrip("/")
    parts = text.split("/")
    if len(parts) >= 2:
        if parts[-2] != resource_type:
            raise ValueError(f"Not a reference to a {resource_type}.")
        text = parts[-1]
    return uuid.UUID(text)


# ----------------------------------------------------------------------------- directory search


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
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _term_ids(session: Session, tokens: list[tuple[str | None, str]], service_type: bool) -> list[uuid.UUID]:
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


# ----------------------------------------------------------------------------- referrals


@dataclass
class ReferralParts:
    """What a referral's FHIR views name besides the referral: its service and its sender."""

    service: Service
    sender: ApiClient


def referral_parts(session: Session, referral: Referral) -> ReferralParts:
    service = session.scalar(
        select(Service)
        .where(Service.id == referral.service_id)
        .options(selectinload(Service.program), selectinload(Service.organization))
    )
    return ReferralParts(service=service, sender=session.get(ApiClient, referral.sender_client_id))


def referral_parts_many(session: Session, referrals: list[Referral]) -> dict[uuid.UUID, ReferralParts]:
    service_ids = {r.service_id for r in referrals}
    client_ids = {r.sender_client_id for r in referrals}
    services = {
        s.id: s
        for s in session.scalars(
            select(Service)
            .where(Service.id.in_(service_ids))
            .options(selectinload(Service.program), selectinload(Service.organization))
        )
    }
    senders = {c.id: c for c in session.scalars(select(ApiClient).where(ApiClient.id.in_(client_ids)))}
    return {r.id: ReferralParts(services[r.service_id], senders[r.sender_client_id]) for r in referrals}


def _relationship_concept(name: str) -> dict:
    if name in ROLE_OF:
        code, display = ROLE_OF[name]
        return {"coding": [{"system": ROLE_CODE, "code": code, "display": display}], "text": name}
    return {"text": name}


def _patient(referral: Referral) -> dict:
    return {
        "resourceType": "Patient",
        "id": "patient",
        "name": [{"use": "official", "family": referral.child_family_name, "given": [referral.child_given_name]}],
        "birthDate": referral.child_birth_date.isoformat(),
        "address": [{"use": "home", "city": referral.child_town, "postalCode": referral.child_postcode}]
        if referral.child_town or referral.child_postcode
        else [],
    }


def _guardian(referral: Referral) -> dict:
    preference = referral.guardian_contact_preference
    telecom = []
    if referral.guardian_phone:
        telecom.append({"system": "phone", "value": referral.guardian_phone, "rank": 1 if preference == "phone" else None})
        if preference == "text":
            telecom.append({"system": "sms", "value": referral.guardian_phone, "rank": 1})
    if referral.guardian_email:
        telecom.append({"system": "email", "value": referral.guardian_email, "rank": 1 if preference == "email" else None})
    return {
        "resourceType": "RelatedPerson",
        "id": "guardian",
        "extension": [{"url": EXT_MAY_LEAVE_MESSAGE, "valueBoolean": referral.guardian_may_leave_message}],
        "patient": {"reference": "#patient"},
        "relationship": [_relationship_concept(referral.guardian_relationship)],
        "name": [{"text": referral.guardian_name}],
        "telecom": telecom,
        "communication": [
            {"language": {"coding": [{"system": LANGUAGE, "code": referral.guardian_preferred_language}]}, "preferred": True}
        ]
        if referral.guardian_preferred_language
        else [],
    }


def _consent(referral: Referral) -> dict:
    performer = None
    if referral.consent_relationship == "self":
        performer = {"reference": "#patient"}
    elif referral.consent_relationship == referral.guardian_relationship:
        performer = {"reference": "#guardian"}
    return {
        "resourceType": "Consent",
        "id": "consent",
        "extension": [
            {
                "url": EXT_CONSENT,
                "extension": [
                    {"url": "obtainedBy", "valueString": referral.consent_obtained_by},
                    {"url": "method", "valueCode": referral.consent_method},
                    {"url": "relationship", "valueCode": referral.consent_relationship},
                ],
            }
        ],
        "status": "active" if referral.consent_obtained else "rejected",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy", "display": "Privacy Consent"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": "#patient"},
        "dateTime": instant(referral.consent_obtained_at),
        "performer": [performer] if performer else [],
        "policyRule": {"text": "Consent to share this referral with the receiving program"},
    }


def _referrer(referral: Referral) -> dict:
    telecom = []
    if referral.referrer_phone:
        telecom.append({"system": "phone", "value": referral.referrer_phone, "use": "work"})
    if referral.referrer_email:
        telecom.append({"system": "email", "value": referral.referrer_email, "use": "work"})
    return {
        "resourceType": "PractitionerRole",
        "id": "referrer",
        "practitioner": {"display": referral.referrer_name},
        "organization": {"display": referral.referrer_organization},
        "telecom": telecom,
    }


def _owner(referral: Referral, service: Service) -> dict:
    team = service.program if referral.program_id and service.program_id == referral.program_id else None
    return {
        "reference": f"Organization/{owner_id(referral.program_id, service.organization_id)}",
        "display": team.name if team is not None else (service.organization.name if referral.program_id is None else None),
    }


def requester(sender: ApiClient) -> dict:
    return {
        "type": "Organization",
        "identifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{sender.id}"},
        "display": sender.name,
    }


def _erased(referral: Referral) -> dict:
    """The parts of an erased referral's resources that replace the personal ones: a Patient
    with no data (the subject stays a reference) and the erasure extension."""
    return {
        "extension": [{"url": EXT_ERASED, "valueDateTime": instant(referral.erased_at)}],
        "contained": [{"resourceType": "Patient", "id": "patient"}],
    }


def service_request(referral: Referral, parts: ReferralParts) -> dict:
    service = parts.service
    if referral.erased_at is not None:
        return _clean(
            {
                "resourceType": "ServiceRequest",
                "id": str(referral.id),
                "meta": _meta(referral.updated_at, referral.version),
                **_erased(referral),
                "status": REQUEST_STATUS[referral.status],
                "intent": "order",
                "priority": referral.urgency,
                "code": {"text": service.name},
                "subject": {"reference": "#patient"},
                "authoredOn": instant(referral.created_at),
                "requester": requester(parts.sender),
                "performer": [
                    {"reference": f"HealthcareService/{service.id}", "display": service.name},
                    _owner(referral, service),
                ],
            }
        )
    return _clean(
        {
            "resourceType": "ServiceRequest",
            "id": str(referral.id),
            "meta": _meta(referral.updated_at, referral.version),
            "contained": [_patient(referral), _guardian(referral), _consent(referral), _referrer(referral)],
            "status": REQUEST_STATUS[referral.status],
            "intent": "order",
            "priority": referral.urgency,
            "code": {"text": service.name},
            "subject": {"reference": "#patient"},
            "authoredOn": instant(referral.created_at),
            "requester": {"reference": "#referrer", "display": referral.referrer_name},
            "performer": [
                {"reference": f"HealthcareService/{service.id}", "display": service.name},
                _owner(referral, service),
            ],
            "reasonCode": [{"text": referral.reason}],
            "supportingInfo": [{"reference": "#guardian"}, {"reference": "#consent"}],
        }
    )


def task(referral: Referral, parts: ReferralParts) -> dict:
    output = []
    if referral.outcome:
        output.append({"type": {"text": "Outcome"}, "valueString": referral.outcome})
    erased = _erased(referral) if referral.erased_at is not None else {}
    return _clean(
        {
            "resourceType": "Task",
            "id": str(referral.id),
            "meta": _meta(referral.updated_at, referral.version),
            "extension": erased.get("extension"),
            "contained": erased.get("contained") or [_patient(referral)],
            "basedOn": [{"reference": f"ServiceRequest/{referral.id}"}],
            "status": referral.status,
            "statusReason": {"text": referral.status_reason} if referral.status_reason else None,
            "businessStatus": {"text": BUSINESS_STATUS[referral.status]},
            "intent": "order",
            "priority": referral.urgency,
            "code": {"coding": [{"system": TASK_CODE, "code": "fulfill", "display": "Fulfill the focal request"}]},
            "focus": {"reference": f"ServiceRequest/{referral.id}"},
            "for": {"reference": "#patient"},
            "authoredOn": instant(referral.created_at),
            "lastModified": instant(referral.updated_at),
            "requester": requester(parts.sender),
            "owner": _owner(referral, parts.service),
            "output": output,
        }
    )


# ----------------------------------------------------------------------------- bundles, outcomes


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


ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    414: "too-costly",
    415: "not-supported",
    422: "business-rule",
    428: "required",
    429: "throttled",
    500: "exception",
    503: "transient",
}


def operation_outcome(status: int, message: str, errors: dict | None = None) -> dict:
    """An OperationOutcome: one issue for the message, one per field at fault (`errors` maps
    a FHIRPath expression or a field path to messages)."""
    code = ISSUE_CODE.get(status, "processing")
    severity = "error" if status < 500 else "fatal"
    issues = [{"severity": severity, "code": code, "diagnostics": message}]
    for path, messages in _flatten(errors or {}):
        issues.append({"severity": "error", "code": "invalid" if status != 422 else "business-rule",
                       "diagnostics": "; ".join(messages), "expression": [path]})
    return {"resourceType": "OperationOutcome", "issue": issues}


def _flatten(errors: dict, prefix: str = ""):
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from _flatten(value, path)
        elif isinstance(value, (list, tuple)):
            yield path, [str(v) for v in value]
        else:
            yield path, [str(value)]


# Where each field of a referral request comes from in a transaction Bundle.
FHIR_PATH = {
    "service_id": "ServiceRequest.performer",
    "reason": "ServiceRequest.reasonCode",
    "urgency": "ServiceRequest.priority",
    "child.given_name": "Patient.name.given",
    "child.family_name": "Patient.name.family",
    "child.birth_date": "Patient.birthDate",
    "child.town": "Patient.address.city",
    "child.postcode": "Patient.address.postalCode",
    "child": "Patient",
    "guardian.name": "RelatedPerson.name",
    "guardian.relationship": "RelatedPerson.relationship",
    "guardian.phone": "RelatedPerson.telecom",
    "guardian.email": "RelatedPerson.telecom",
    "guardian.preferred_language": "RelatedPerson.communication.language",
    "guardian.contact_preference": "RelatedPerson.telecom.rank",
    "guardian.may_leave_message": f"RelatedPerson.extension('{EXT_MAY_LEAVE_MESSAGE}')",
    "guardian": "RelatedPerson",
    "consent.obtained": "Consent.status",
    "consent.obtained_at": "Consent.dateTime",
    "consent.obtained_by": f"Consent.extension('{EXT_CONSENT}').extension('obtainedBy')",
    "consent.method": f"Consent.extension('{EXT_CONSENT}').extension('method')",
    "consent.relationship": f"Consent.extension('{EXT_CONSENT}').extension('relationship')",
    "consent": "Consent",
    "referrer.name": "ServiceRequest.requester.practitioner",
    "referrer.organization": "ServiceRequest.requester.organization",
    "referrer.phone": "ServiceRequest.requester.telecom",
    "referrer.email": "ServiceRequest.requester.telecom",
    "referrer": "ServiceRequest.requester",
}


def fhir_paths(errors: dict) -> dict:
    """Field errors of a referral request, keyed by where the field sits in the Bundle."""
    out: dict[str, list[str]] = {}
    for path, messages in _flatten(errors):
        path = path.removeprefix("json.")
        parts = path.split(".")
        key = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in FHIR_PATH), None)
        out.setdefault(FHIR_PATH[key] if key else path, []).extend(messages)
    return out


# ----------------------------------------------------------------------------- referrals from FHIR


@dataclass
class BundleReferral:
    """A referral request read from a transaction Bundle."""

    data: dict  # the shape `POST /referrals` takes, not yet validated
    if_none_exist: str | None
    entries: list[str]  # the resourceType of each entry, in order


def _first(items, default=None):
    return items[0] if isinstance(items, list) and items else default


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _text_of_name(name: dict) -> str | None:
    if not isinstance(name, dict):
        return None
    if isinstance(name.get("text"), str):
        return name["text"]
    words = [w for w in _list(name.get("given")) if isinstance(w, str)]
    if isinstance(name.get("family"), str):
        words.append(name["family"])
    return " ".join(words) or None


def _put(target: dict, key: str, value) -> None:
    if value is not None and value != "":
        target[key] = value


def _extension(resource: dict, url: str) -> dict:
    return next((e for e in _list(resource.get("extension")) if isinstance(e, dict) and e.get("url") == url), {})


def _codes(concepts) -> list[str]:
    out = []
    for concept in _list(concepts):
        for coding in _list(_dict(concept).get("coding")):
            if isinstance(_dict(coding).get("code"), str):
                out.append(coding["code"])
        if isinstance(_dict(concept).get("text"), str):
            out.append(concept["text"])
    return out


def _concept_text(concept) -> str | None:
    """A CodeableConcept as words: its text, else its first coding's display."""
    concept = _dict(concept)
    if isinstance(concept.get("text"), str):
        return concept["text"]
    return next((c["display"] for c in map(_dict, _list(concept.get("coding"))) if isinstance(c.get("display"), str)), None)


def _relationship(concepts) -> str | None:
    codes = _codes(concepts)
    for code in codes:
        if code in RELATIONSHIP_OF:
            return RELATIONSHIP_OF[code]
        if code.lower() in GUARDIAN_RELATIONSHIPS or code.lower() == "self":
            return code.lower()
    return codes[0] if codes else None


def referral_from_bundle(bundle) -> BundleReferral:
    """Read a transaction Bundle of ServiceRequest, Patient, RelatedPerson, Consent and Task.

    Structure (one of each resource, references that resolve, a Task that asks to fulfil the
    ServiceRequest) is checked here and raises InvalidResource; the values themselves are
    left for the same validation `/referrals` applies.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidResource("Send a FHIR Bundle resource.", {"Bundle": ["Not a Bundle."]})
    bad_text = first_text_problem(bundle)
    if bad_text is not None:
        where, problem = bad_text
        raise InvalidData("The Bundle holds text that is not allowed; see the issues.", {"Bundle": [f"{where}: {problem}"]})
    if bundle.get("type") != "transaction":
        raise InvalidResource("The Bundle must be a transaction.", {"Bundle.type": ["Use transaction."]})
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("resource"), dict) for e in entries):
        raise InvalidResource("Each Bundle entry needs a resource.", {"Bundle.entry": ["Each entry needs a resource."]})
    by_type: dict[str, list[dict]] = {}
    for entry in entries:
        by_type.setdefault(entry["resource"].get("resourceType"), []).append(entry)
    missing = {}
    for kind in ("ServiceRequest", "Patient", "RelatedPerson", "Consent", "Task"):
        count = len(by_type.get(kind, []))
        if count != 1:
            missing[f"Bundle.entry.resource.ofType({kind})"] = [
                f"The Bundle needs one {kind} entry." if count == 0 else f"The Bundle may hold only one {kind} entry."
            ]
    unexpected = set(by_type) - {"ServiceRequest", "Patient", "RelatedPerson", "Consent", "Task", "PractitionerRole", "Practitioner", "Organization"}
    if unexpected:
        missing["Bundle.entry.resource"] = ["Only ServiceRequest, Patient, RelatedPerson, Consent, Task, PractitionerRole, Practitioner and Organization entries are taken."]
    if missing:
        raise InvalidResource("The Bundle does not hold the resources of a referral.", missing)
    for entry in entries:
        request = _dict(entry.get("request"))
        if request and request.get("method") not in ("POST", None):
            raise InvalidResource("Only POST entries are taken.", {"Bundle.entry.request.method": ["Use POST."]})

    request_entry = by_type["ServiceRequest"][0]
    service_request = request_entry["resource"]
    patient = by_type["Patient"][0]["resource"]
    guardian = by_type["RelatedPerson"][0]["resource"]
    consent = by_type["Consent"][0]["resource"]
    task_resource = by_type["Task"][0]["resource"]

    def resolve(reference, container: dict | None = None) -> dict | None:
        ref = _dict(reference).get("reference")
        if not isinstance(ref, str):
            return None
        if ref.startswith("#") and container is not None:
            return next((c for c in _list(container.get("contained")) if _dict(c).get("id") == ref[1:]), None)
        for entry in entries:
            resource = entry["resource"]
            if entry.get("fullUrl") == ref or f"{resource.get('resourceType')}/{resource.get('id')}" == ref:
                return resource
        return None

    problems = {}
    if resolve(service_request.get("subject"), service_request) is not patient:
        problems["ServiceRequest.subject"] = ["Refer to the Patient entry."]
    if resolve(task_resource.get("focus"), task_resource) is not service_request:
        problems["Task.focus"] = ["Refer to the ServiceRequest entry."]
    if task_resource.get("status") != "requested":
        problems["Task.status"] = ["A new referral's Task is requested."]
    if problems:
        raise InvalidResource("The Bundle's references do not form a referral.", problems)

    data: dict = {}
    performer = next(
        (p.get("reference") for p in _list(service_request.get("performer"))
         if isinstance(_dict(p).get("reference"), str) and "HealthcareService/" in p["reference"]),
        None,
    )
    if performer is not None:
        data["service_id"] = performer.rstrip("/").split("/")[-1]
    reason = next((t for t in map(_concept_text, _list(service_request.get("reasonCode"))) if t), None)
    _put(data, "reason", reason or _dict(_first(service_request.get("note"))).get("text"))
    data["urgency"] = service_request.get("priority", "routine")

    child: dict = {}
    name = _dict(next((n for n in _list(patient.get("name")) if _dict(n).get("use") == "official"), _first(patient.get("name"))))
    _put(child, "given_name", _first(name.get("given")))
    _put(child, "family_name", name.get("family"))
    _put(child, "birth_date", patient.get("birthDate"))
    address = _dict(_first(patient.get("address")))
    _put(child, "town", address.get("city"))
    _put(child, "postcode", address.get("postalCode"))
    data["child"] = child

    people: dict = {}
    _put(people, "name", _text_of_name(_first(guardian.get("name"))))
    _put(people, "relationship", _relationship(guardian.get("relationship")))
    telecom = [_dict(t) for t in _list(guardian.get("telecom"))]
    phone = next((t.get("value") for t in telecom if t.get("system") in ("phone", "sms")), None)
    email = next((t.get("value") for t in telecom if t.get("system") == "email"), None)
    _put(people, "phone", phone)
    _put(people, "email", email)
    preferred = sorted((t for t in telecom if isinstance(t.get("rank"), int)), key=lambda t: t["rank"])
    system = preferred[0].get("system") if preferred else None
    people["contact_preference"] = {"phone": "phone", "sms": "text", "email": "email"}.get(system, "none") if system else "none"
    communication = [_dict(c) for c in _list(guardian.get("communication"))]
    language = next((c for c in communication if c.get("preferred") is True), _first(communication, {}))
    code = _first(_codes([_dict(language).get("language")]))
    _put(people, "preferred_language", code if isinstance(code, str) else None)  # ReferralIn keeps its language
    _put(people, "may_leave_message", _extension(guardian, EXT_MAY_LEAVE_MESSAGE).get("valueBoolean"))
    data["guardian"] = people

    agreed: dict = {"obtained": consent.get("status") == "active"}
    details = _extension(consent, EXT_CONSENT)
    detail = {e.get("url"): e for e in _list(details.get("extension")) if isinstance(e, dict)}
    _put(agreed, "obtained_by", _dict(detail.get("obtainedBy")).get("valueString"))
    _put(agreed, "method", _dict(detail.get("method")).get("valueCode"))
    relationship = _dict(detail.get("relationship")).get("valueCode")
    if relationship is None:
        grantor = resolve(_first(consent.get("performer")), consent)
        if grantor is patient:
            relationship = "self"
        elif grantor is guardian:
            relationship = people.get("relationship")
    _put(agreed, "relationship", relationship)
    _put(agreed, "obtained_at", consent.get("dateTime"))
    data["consent"] = agreed

    referrer: dict = {}
    role = resolve(service_request.get("requester"), service_request)
    if role is not None and role.get("resourceType") == "PractitionerRole":
        practitioner = resolve(role.get("practitioner"), service_request)
        _put(referrer, "name", _text_of_name(_first(_dict(practitioner).get("name"))) or _dict(role.get("practitioner")).get("display"))
        organization_ = resolve(role.get("organization"), service_request)
        _put(referrer, "organization", _dict(organization_).get("name") or _dict(role.get("organization")).get("display"))
        telecom = [_dict(t) for t in _list(role.get("telecom"))]
    elif role is not None and role.get("resourceType") == "Practitioner":
        _put(referrer, "name", _text_of_name(_first(role.get("name"))))
        _put(referrer, "organization", _dict(service_request.get("requester")).get("display"))
        telecom = [_dict(t) for t in _list(role.get("telecom"))]
    else:
        _put(referrer, "name", _dict(service_request.get("requester")).get("display"))
        telecom = []
    _put(referrer, "phone", next((t.get("value") for t in telecom if t.get("system") == "phone"), None))
    _put(referrer, "email", next((t.get("value") for t in telecom if t.get("system") == "email"), None))
    data["referrer"] = referrer

    if_none_exist = _dict(request_entry.get("request")).get("ifNoneExist")
    return BundleReferral(
        data=data,
        if_none_exist=if_none_exist if isinstance(if_none_exist, str) else None,
        entries=[entry["resource"].get("resourceType") for entry in entries],
    )


def transaction_response(kinds: list[str], referral: Referral, parts: ReferralParts, created: bool) -> dict:
    """The transaction-response Bundle: an entry per request entry, in order. The
    ServiceRequest and Task entries carry the resources; Patient, RelatedPerson, Consent and
    the referrer are kept inside the ServiceRequest, as contained resources."""
    status = "201 Created" if created else "200 OK"
    version = f'W/"{referral.version}"'
    out = []
    for kind in kinds:
        response = {"status": status, "etag": version, "lastModified": instant(referral.updated_at)}
        entry: dict = {"response": response}
        if kind == "ServiceRequest":
            response["location"] = f"ServiceRequest/{referral.id}/_history/{referral.version}"
            entry["resource"] = service_request(referral, parts)
        elif kind == "Task":
            response["location"] = f"Task/{referral.id}/_history/{referral.version}"
            entry["resource"] = task(referral, parts)
        else:
            response["outcome"] = {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "information",
                        "code": "informational",
                        "diagnostics": f"Kept in ServiceRequest/{referral.id} as a contained resource.",
                    }
                ],
            }
        out.append(entry)
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": out}


def capability_statement(base: str) -> dict:
    def search(name: str, kind: str, doc: str) -> dict:
        return {"name": name, "type": kind, "documentation": doc}

    paging = [
        search("_count", "number", "Entries per page, 1 to 100 (default 20)."),
        search("_page", "number", "Page number, from 1 (follow the Bundle's next link)."),
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": CAPABILITY_DATE,
        "publisher": "Connecticut Children's Office for Community Child Health",
        "kind": "instance",
        "implementation": {"description": "OCCH program directory and referral API", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": [MEDIA_TYPE, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Directory reads are public. Referral resources need an API key "
                "(Authorization: Bearer KEY) with the scope referrals:submit or referrals:manage, "
                "and show only the referrals that key may see.",
                "security": {
                    "description": "Bearer API keys issued by OCCH; scopes referrals:submit and referrals:manage.",
                },
                "resource": [
                    {
                        "type": "HealthcareService",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            search("name", "string", "Name starts with (also name:contains, name:exact)."),
                            search("service-category", "token", "OCCH category code, with every category below it."),
                            search("service-type", "token", "HL7 service-type code."),
                            search("organization", "reference", "The providing Organization (a program or an organization)."),
                            search("active", "token", "true or false; all services when absent."),
                            search("_id", "token", "Service ids."),
                            search("_lastUpdated", "date", "When the service record last changed."),
                        ]
                        + paging,
                    },
                    {"type": "Organization", "interaction": [{"code": "read"}]},
                    {"type": "Location", "interaction": [{"code": "read"}]},
                    {"type": "ServiceRequest", "interaction": [{"code": "read"}]},
                    {
                        "type": "Task",
                        "interaction": [
                            {"code": "read"},
                            {"code": "search-type"},
                            {
                                "code": "update",
                                "documentation": "PUT the Task as read with status, statusReason and output "
                                "changed: one move of the referral's lifecycle, as POST /referrals/{id}/status. "
                                "If-Match: W/\"<versionId>\" is checked when sent (412 when stale).",
                            },
                            {
                                "code": "patch",
                                "documentation": "JSON Patch (application/json-patch+json) of /status, "
                                "/statusReason and /output: the same move as an update.",
                            },
                        ],
                        "versioning": "versioned",
                        "updateCreate": False,
                        "searchParam": [
                            search("owner", "reference", "The receiving Organization (program)."),
                            search("status", "token", "Task status codes, comma-separated."),
                            search("_lastUpdated", "date", "Changed after: gt, sa or ge (for polling)."),
                        ]
                        + paging,
                    },
                ],
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": "POST a transaction Bundle of ServiceRequest, Patient, RelatedPerson, "
                        "Consent and Task to create a referral (scope referrals:submit).",
                    }
                ],
            }
        ],
    }


def statuses_from(values: list[str]) -> list[str]:
    """Task status search values (comma-separated codes ORed); ValueError on an unknown one."""
    out = []
    for value in values:
        for code in value.split(","):
            code = code.strip()
            if code not in REFERRAL_STATUSES:
                raise ValueError(f"Unknown Task status: use one of {', '.join(REFERRAL_STATUSES)}.")
            out.append(code)
    return out



# ----------------------------------------------------------------------------- updating a Task

# What an update of a Task may change: its referral's status, the reason and the outcome.
TASK_CHANGEABLE = ("status", "statusReason", "output")
# Kept by the server: what an update sends in these is not stored (FHIR: meta.versionId and
# meta.lastUpdated of an update are ignored; lastModified is the time of the change).
TASK_SERVER_KEPT = ("meta", "lastModified")
# The field of a move (as `POST /referrals/{id}/status` takes it) and where it sits in a Task.
TASK_PATH = {"status": "Task.status", "reason": "Task.statusReason", "outcome": "Task.output"}
PATCH_MEDIA_TYPE = "application/json-patch+json"


def check_task_resource(resource, resource_id: str) -> dict:
    """The body of `PUT /fhir/Task/<id>`: a Task with the id of the URL (InvalidResource, a 400, otherwise)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Task":
        raise InvalidResource("Send a Task resource (resourceType Task).", {"Task": ["Not a Task resource."]})
    if resource.get("id") != resource_id:
        raise InvalidResource("The Task's id must be the id in the URL.", {"Task.id": ["Not the id of the URL."]})
    return resource


def task_may_change(tokens: list[str]) -> bool:
    """Whether a JSON Patch operation may write at this path of a Task."""
    return bool(tokens) and tokens[0] in TASK_CHANGEABLE


def patch_task(current: dict, operations) -> dict:
    """The Task with a JSON Patch applied (only /status, /statusReason and /output may be
    written); errors name the Task's elements (`Task.contained`), not the pointers."""
    try:
        return json_patch.apply_patch(current, operations, task_may_change)
    except InvalidData as exc:
        errors = {}
        for pointer, messages in exc.errors.items():
            tokens = json_patch.pointer_tokens(pointer)
            path = ".".join(["Task", *(t for t in tokens if not t.isdigit() and t != "-")])
            errors.setdefault(path, []).extend(messages)
        raise InvalidData(exc.message, errors) from None


def task_move(current: dict, incoming: dict) -> dict:
    """The move an updated Task asks for, as `POST /referrals/{id}/status` takes it
    (`status`, and `reason` and `outcome` when given), from the current Task and the Task sent.

    Only `status`, `statusReason` (its text) and `output` (one output, the outcome as
    `valueString`) may differ from the current Task; `meta` and `lastModified` are the
    server's; `businessStatus` may be left as it was read or be the new status's. Anything else
    that differs, is missing or is added is an InvalidData naming it (a 422).
    """
    errors: dict[str, list[str]] = {}
    for name in sorted(set(current) | set(incoming)):
        if name in TASK_CHANGEABLE or name in TASK_SERVER_KEPT or name == "businessStatus":
            continue
        if name not in incoming or name not in current or not json_patch.same(current[name], incoming[name]):
            errors[f"Task.{name}"] = ["Only status, statusReason and output may change; this differs from the current Task."]
    move: dict = {"status": incoming.get("status")}
    if move["status"] is None:
        errors["Task.status"] = ["Required."]
    if "businessStatus" in incoming and isinstance(move["status"], str) and move["status"] in BUSINESS_STATUS:
        kept = [current.get("businessStatus"), {"text": BUSINESS_STATUS[move["status"]]}]
        if not any(json_patch.same(incoming["businessStatus"], value) for value in kept):
            errors["Task.businessStatus"] = ["Set by the server from status: send it as read, or leave it out."]
    if incoming.get("statusReason") is not None:
        reason = _concept_text(incoming["statusReason"]) if isinstance(incoming["statusReason"], dict) else None
        if reason is None:
            errors["Task.statusReason"] = ["A CodeableConcept whose text is the reason."]
        else:
            move["reason"] = reason
    output = incoming.get("output")
    if output is not None and output != []:
        values = [item.get("valueString") for item in output] if isinstance(output, list) and all(
            isinstance(item, dict) for item in output) else None
        if values is None or len(values) != 1 or not isinstance(values[0], str):
            errors["Task.output"] = ["One output: the outcome, as valueString."]
        else:
            move["outcome"] = values[0]
    if errors:
        raise InvalidData("The Task differs from the current one where it may not; see the issues.", errors)
    return move


def task_paths(errors: dict) -> dict:
    """Field errors of a move (`reason`, `outcome`), keyed by where they sit in a Task."""
    out: dict[str, list[str]] = {}
    for path, messages in _flatten(errors):
        path = path.removeprefix("json.")
        out.setdefault(TASK_PATH.get(path.split(".")[0], path), []).extend(messages)
    return out
