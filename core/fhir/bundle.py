"""Referrals from FHIR: a transaction Bundle read into the plain request dict that
`POST /referrals` validates and `core.referrals` takes, and the transaction-response Bundle
that answers it.

`referral_from_bundle` checks the Bundle's structure (one of each resource, references that
resolve, a Task that asks to fulfil the ServiceRequest) and raises InvalidResource, a 400; one
small reader per part (`read_request`, `read_child`, `read_guardian`, `read_consent`,
`read_referrer`) then takes its values as sent, leaving them to the same validation
`/referrals` applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import InvalidData
from core.fhir.common import EXT_CONSENT, EXT_MAY_LEAVE_MESSAGE, InvalidResource, instant
from core.fhir.elements import (
    as_dict,
    as_list,
    codes,
    concept_text,
    extension,
    first,
    put,
    relationship,
    text_of_name,
)
from core.fhir.referrals import ReferralParts, service_request, task
from models import Referral
from schemas.text import first_text_problem

# The resources of a referral, one of each, and every kind a Bundle may hold.
REFERRAL_KINDS = ("ServiceRequest", "Patient", "RelatedPerson", "Consent", "Task")
TAKEN_KINDS = REFERRAL_KINDS + ("PractitionerRole", "Practitioner", "Organization")
# RelatedPerson.telecom's system of rank 1 as the guardian's contact preference.
PREFERENCE_OF_SYSTEM = {"phone": "phone", "sms": "text", "email": "email"}


@dataclass
class BundleReferral:
    """A referral request read from a transaction Bundle."""

    data: dict  # the shape `POST /referrals` takes, not yet validated
    if_none_exist: str | None
    entries: list[str]  # the resourceType of each entry, in order


class _Bundle:
    """The entries of a transaction Bundle whose structure has been checked: the one resource
    of each referral kind, and references resolved among the entries."""

    def __init__(self, entries: list[dict]):
        self.entries = entries
        self.by_type: dict[str, list[dict]] = {}
        for entry in entries:
            self.by_type.setdefault(entry["resource"].get("resourceType"), []).append(entry)

    def one(self, kind: str) -> dict:
        """The resource of the Bundle's one entry of this kind."""
        return self.by_type[kind][0]["resource"]

    def resolve(self, reference, container: dict | None = None) -> dict | None:
        """The resource a Reference names: `#id` among the container's contained resources,
        else an entry by its fullUrl or `<resourceType>/<id>`; None when nothing matches."""
        ref = as_dict(reference).get("reference")
        if not isinstance(ref, str):
            return None
        if ref.startswith("#") and container is not None:
            return next((c for c in as_list(container.get("contained")) if as_dict(c).get("id") == ref[1:]), None)
        for entry in self.entries:
            resource = entry["resource"]
            if entry.get("fullUrl") == ref or f"{resource.get('resourceType')}/{resource.get('id')}" == ref:
                return resource
        return None


# ----------------------------------------------------------------------------- structure


def _entries(bundle) -> list[dict]:
    """The entries of a transaction Bundle, each with a resource; InvalidResource otherwise
    (InvalidData when it holds text the API refuses anywhere)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidResource("Send a FHIR Bundle resource.", {"Bundle": ["Not a Bundle."]})
    bad_text = first_text_problem(bundle)
    if bad_text is not None:
        where, problem = bad_text
        raise InvalidData(
            "The Bundle holds text that is not allowed; see the issues.", {"Bundle": [f"{where}: {problem}"]}
        )
    if bundle.get("type") != "transaction":
        raise InvalidResource("The Bundle must be a transaction.", {"Bundle.type": ["Use transaction."]})
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("resource"), dict) for e in entries
    ):
        raise InvalidResource("Each Bundle entry needs a resource.", {"Bundle.entry": ["Each entry needs a resource."]})
    return entries


def _check_kinds(by_type: dict[str, list[dict]]) -> None:
    """One entry of each referral kind, and no kind the Bundle may not hold."""
    missing = {}
    for kind in REFERRAL_KINDS:
        count = len(by_type.get(kind, []))
        if count != 1:
            missing[f"Bundle.entry.resource.ofType({kind})"] = [
                f"The Bundle needs one {kind} entry." if count == 0 else f"The Bundle may hold only one {kind} entry."
            ]
    if set(by_type) - set(TAKEN_KINDS):
        missing["Bundle.entry.resource"] = [
            "Only ServiceRequest, Patient, RelatedPerson, Consent, Task, PractitionerRole, Practitioner "
            "and Organization entries are taken."
        ]
    if missing:
        raise InvalidResource("The Bundle does not hold the resources of a referral.", missing)


def _check_methods(entries: list[dict]) -> None:
    """Only POST entries (or entries without a request) are taken."""
    for entry in entries:
        request = as_dict(entry.get("request"))
        if request and request.get("method") not in ("POST", None):
            raise InvalidResource("Only POST entries are taken.", {"Bundle.entry.request.method": ["Use POST."]})


def _check_references(bundle: _Bundle) -> None:
    """The ServiceRequest is about the Patient, and the Task a new one that fulfils it."""
    request, task_resource = bundle.one("ServiceRequest"), bundle.one("Task")
    problems = {}
    if bundle.resolve(request.get("subject"), request) is not bundle.one("Patient"):
        problems["ServiceRequest.subject"] = ["Refer to the Patient entry."]
    if bundle.resolve(task_resource.get("focus"), task_resource) is not request:
        problems["Task.focus"] = ["Refer to the ServiceRequest entry."]
    if task_resource.get("status") != "requested":
        problems["Task.status"] = ["A new referral's Task is requested."]
    if problems:
        raise InvalidResource("The Bundle's references do not form a referral.", problems)


# ----------------------------------------------------------------------------- readers


def read_request(request: dict) -> dict:
    """The service (the HealthcareService performer), reason and urgency of a ServiceRequest."""
    data: dict = {}
    performer = next(
        (
            p.get("reference")
            for p in as_list(request.get("performer"))
            if isinstance(as_dict(p).get("reference"), str) and "HealthcareService/" in p["reference"]
        ),
        None,
    )
    if performer is not None:
        data["service_id"] = performer.rstrip("/").split("/")[-1]
    reason = next((t for t in map(concept_text, as_list(request.get("reasonCode"))) if t), None)
    put(data, "reason", reason or as_dict(first(request.get("note"))).get("text"))
    data["urgency"] = request.get("priority", "routine")
    return data


def read_child(patient: dict) -> dict:
    """The child from the Patient: the official name (else the first), birth date, town and postcode."""
    child: dict = {}
    names = patient.get("name")
    name = as_dict(next((n for n in as_list(names) if as_dict(n).get("use") == "official"), first(names)))
    put(child, "given_name", first(name.get("given")))
    put(child, "family_name", name.get("family"))
    put(child, "birth_date", patient.get("birthDate"))
    address = as_dict(first(patient.get("address")))
    put(child, "town", address.get("city"))
    put(child, "postcode", address.get("postalCode"))
    return child


def _contact_preference(telecom: list[dict]) -> str:
    """The system of the best-ranked telecom as a contact preference ("none" without a rank)."""
    preferred = sorted((t for t in telecom if isinstance(t.get("rank"), int)), key=lambda t: t["rank"])
    system = preferred[0].get("system") if preferred else None
    return PREFERENCE_OF_SYSTEM.get(system, "none") if system else "none"


def _preferred_language(person: dict) -> str | None:
    """The language of the preferred communication (else the first), as sent: ReferralIn reduces a
    BCP 47 tag to its primary language, the one rule of both doors."""
    communication = [as_dict(c) for c in as_list(person.get("communication"))]
    language = next((c for c in communication if c.get("preferred") is True), first(communication, {}))
    code = first(codes([as_dict(language).get("language")]))
    return code if isinstance(code, str) else None


def read_guardian(guardian: dict) -> dict:
    """The guardian from the RelatedPerson: name, relationship, phone (or SMS number), email,
    contact preference (the telecom of rank 1), preferred language and may-leave-message."""
    person: dict = {}
    put(person, "name", text_of_name(first(guardian.get("name"))))
    put(person, "relationship", relationship(guardian.get("relationship")))
    telecom = [as_dict(t) for t in as_list(guardian.get("telecom"))]
    put(person, "phone", next((t.get("value") for t in telecom if t.get("system") in ("phone", "sms")), None))
    put(person, "email", next((t.get("value") for t in telecom if t.get("system") == "email"), None))
    person["contact_preference"] = _contact_preference(telecom)
    put(person, "preferred_language", _preferred_language(guardian))
    put(person, "may_leave_message", extension(guardian, EXT_MAY_LEAVE_MESSAGE).get("valueBoolean"))
    return person


def read_consent(bundle: _Bundle, guardian_relationship: str | None) -> dict:
    """The consent from the Consent: obtained when active; who obtained it, how and when from
    the consent extension; who gave it from the extension, else from its performer (the
    Patient is "self", the RelatedPerson the guardian's relationship)."""
    consent = bundle.one("Consent")
    agreed: dict = {"obtained": consent.get("status") == "active"}
    details = extension(consent, EXT_CONSENT)
    detail = {e.get("url"): e for e in as_list(details.get("extension")) if isinstance(e, dict)}
    put(agreed, "obtained_by", as_dict(detail.get("obtainedBy")).get("valueString"))
    put(agreed, "method", as_dict(detail.get("method")).get("valueCode"))
    given_by = as_dict(detail.get("relationship")).get("valueCode")
    if given_by is None:
        grantor = bundle.resolve(first(consent.get("performer")), consent)
        if grantor is bundle.one("Patient"):
            given_by = "self"
        elif grantor is bundle.one("RelatedPerson"):
            given_by = guardian_relationship
    put(agreed, "relationship", given_by)
    put(agreed, "obtained_at", consent.get("dateTime"))
    return agreed


def read_referrer(bundle: _Bundle) -> dict:
    """The referrer from ServiceRequest.requester: a PractitionerRole (its practitioner,
    organization and telecom), a Practitioner (the requester's display is the organization),
    or only a display (the referrer's name)."""
    request = bundle.one("ServiceRequest")
    requester = as_dict(request.get("requester"))
    role = bundle.resolve(request.get("requester"), request)
    referrer: dict = {}
    telecom: list[dict] = []
    if role is not None and role.get("resourceType") == "PractitionerRole":
        practitioner = bundle.resolve(role.get("practitioner"), request)
        name = text_of_name(first(as_dict(practitioner).get("name"))) or as_dict(role.get("practitioner")).get(
            "display"
        )
        organization = bundle.resolve(role.get("organization"), request)
        put(referrer, "name", name)
        put(
            referrer,
            "organization",
            as_dict(organization).get("name") or as_dict(role.get("organization")).get("display"),
        )
        telecom = [as_dict(t) for t in as_list(role.get("telecom"))]
    elif role is not None and role.get("resourceType") == "Practitioner":
        put(referrer, "name", text_of_name(first(role.get("name"))))
        put(referrer, "organization", requester.get("display"))
        telecom = [as_dict(t) for t in as_list(role.get("telecom"))]
    else:
        put(referrer, "name", requester.get("display"))
    put(referrer, "phone", next((t.get("value") for t in telecom if t.get("system") == "phone"), None))
    put(referrer, "email", next((t.get("value") for t in telecom if t.get("system") == "email"), None))
    return referrer


# ----------------------------------------------------------------------------- the referral


def referral_from_bundle(bundle) -> BundleReferral:
    """Read a transaction Bundle of ServiceRequest, Patient, RelatedPerson, Consent and Task.

    Structure (one of each resource, references that resolve, a Task that asks to fulfil the
    ServiceRequest) is checked here and raises InvalidResource; the values themselves are
    left for the same validation `/referrals` applies.
    """
    entries = _entries(bundle)
    checked = _Bundle(entries)
    _check_kinds(checked.by_type)
    _check_methods(entries)
    _check_references(checked)

    data = read_request(checked.one("ServiceRequest"))
    data["child"] = read_child(checked.one("Patient"))
    data["guardian"] = read_guardian(checked.one("RelatedPerson"))
    data["consent"] = read_consent(checked, data["guardian"].get("relationship"))
    data["referrer"] = read_referrer(checked)

    if_none_exist = as_dict(checked.by_type["ServiceRequest"][0].get("request")).get("ifNoneExist")
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
        response: dict[str, Any] = {"status": status, "etag": version, "lastModified": instant(referral.updated_at)}
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
