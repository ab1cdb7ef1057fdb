"""What every part of the FHIR views shares: the FHIR version and media type, this API's
canonical extension URLs, the code systems it names, the maps between the referral's own
values and FHIR's, the 400 error of a malformed request, and the small builders every
resource uses (`instant`, `clean`, `meta`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from core.errors import DomainError

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
EXT_CAPACITY = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)
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
REFERRAL_METHOD_OF_CHANNEL = {
    "phone": ("phone", "Phone"),
    "fax": ("fax", "Fax"),
    "web": ("elec", "Secure Messaging"),
    "email": ("semail", "Secure Email"),
}


class InvalidResource(DomainError):
    """A FHIR request that cannot be processed as sent (400): not a Bundle, entries missing,
    references that resolve to nothing. `errors` maps a FHIR path to its messages."""

    code = "invalid_resource"


def instant(value: datetime | None) -> str | None:
    """A FHIR instant (UTC, with `Z`); naive datetimes are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def clean(resource: dict) -> dict:
    """Drop empty values: FHIR forbids empty elements (and `null`)."""
    out = {}
    for key, value in resource.items():
        if isinstance(value, dict):
            value = clean(value)
        elif isinstance(value, list):
            value = [clean(v) if isinstance(v, dict) else v for v in value]
            value = [v for v in value if v not in (None, "", {}, [])]
        if value not in (None, "", {}, []):
            out[key] = value
    return out


def meta(last_updated: datetime | None, version: int | None = None) -> dict:
    """A resource's `meta`: its versionId (when versioned) and lastUpdated."""
    return {"versionId": str(version) if version is not None else None, "lastUpdated": instant(last_updated)}


def owner_id(service_program_id: uuid.UUID | None, organization_id: uuid.UUID) -> uuid.UUID:
    """The Organization that receives a service's referrals: its program, else its organization."""
    return service_program_id or organization_id
