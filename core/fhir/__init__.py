"""HL7 FHIR R4 (4.0.1) views of the directory and of referrals, and referrals from FHIR.

The package, by part (each module says more):

- `common`: version, media type, extension URLs, code systems, value maps, InvalidResource.
- `resources`: the directory as HealthcareService, Organization and Location.
- `referrals`: a referral as ServiceRequest and Task.
- `params`: search parameter values (dates, tokens, references, statuses).
- `search`: HealthcareService and Task searches, and the searchset Bundle.
- `bundle`: a transaction Bundle read into a referral request, and its response.
- `task_update`: updating a referral through its Task (PUT, JSON Patch).
- `capability`: the CapabilityStatement.
- `outcome`: OperationOutcome, and where a field error sits in a resource.
- `elements`: tolerant readers of FHIR JSON sent by clients.

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

from core.fhir.bundle import BundleReferral, referral_from_bundle, transaction_response
from core.fhir.capability import capability_statement
from core.fhir.common import (
    CANONICAL,
    EXT_CAPACITY,
    EXT_CONSENT,
    EXT_ERASED,
    EXT_MAY_LEAVE_MESSAGE,
    FHIR_VERSION,
    MEDIA_TYPE,
    InvalidResource,
    instant,
    owner_id,
)
from core.fhir.outcome import fhir_paths, operation_outcome
from core.fhir.params import (
    DateBound,
    changed_after,
    date_condition,
    latest_change_after,
    parse_date,
    reference_id,
    split_token,
    statuses_from,
)
from core.fhir.referrals import ReferralParts, referral_parts, referral_parts_many, requester, service_request, task
from core.fhir.resources import (
    category_system,
    get_location,
    healthcare_service,
    location,
    organization,
    organization_resource,
    program_organization,
)
from core.fhir.search import ServiceSearch, TaskSearch, search_services, search_tasks, searchset, services_owned_by
from core.fhir.task_update import PATCH_MEDIA_TYPE, check_task_resource, patch_task, task_move, task_paths

__all__ = [
    "CANONICAL",
    "EXT_CAPACITY",
    "EXT_CONSENT",
    "EXT_ERASED",
    "EXT_MAY_LEAVE_MESSAGE",
    "FHIR_VERSION",
    "MEDIA_TYPE",
    "PATCH_MEDIA_TYPE",
    "BundleReferral",
    "DateBound",
    "InvalidResource",
    "ReferralParts",
    "ServiceSearch",
    "TaskSearch",
    "capability_statement",
    "category_system",
    "changed_after",
    "check_task_resource",
    "date_condition",
    "fhir_paths",
    "get_location",
    "healthcare_service",
    "instant",
    "latest_change_after",
    "location",
    "operation_outcome",
    "organization",
    "organization_resource",
    "owner_id",
    "parse_date",
    "patch_task",
    "program_organization",
    "reference_id",
    "referral_from_bundle",
    "referral_parts",
    "referral_parts_many",
    "requester",
    "search_services",
    "search_tasks",
    "searchset",
    "service_request",
    "services_owned_by",
    "split_token",
    "statuses_from",
    "task",
    "task_move",
    "task_paths",
    "transaction_response",
]
