"""Referrals as FHIR resources: a ServiceRequest (the child, guardian, consent and referrer
contained) and a Task (the lifecycle), both under the referral's id; and the reads of what
they name besides the referral (its service and its sending client)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core.fhir.common import (
    BUSINESS_STATUS,
    CONSENT_SCOPE,
    EXT_CONSENT,
    EXT_ERASED,
    EXT_MAY_LEAVE_MESSAGE,
    LANGUAGE,
    LOINC,
    REQUEST_STATUS,
    ROLE_CODE,
    ROLE_OF,
    TASK_CODE,
    URI_SYSTEM,
    clean,
    instant,
    meta,
    owner_id,
)
from models import ApiClient, Referral, Service


@dataclass
class ReferralParts:
    """What a referral's FHIR views name besides the referral: its service and its sender."""

    service: Service
    sender: ApiClient


def referral_parts(session: Session, referral: Referral) -> ReferralParts:
    """The service (with its program and organization) and the sending client of a referral."""
    service = session.scalars(
        select(Service)
        .where(Service.id == referral.service_id)
        .options(selectinload(Service.program), selectinload(Service.organization))
    ).one()  # a referral's service and sender are foreign keys: they exist
    return ReferralParts(service=service, sender=session.get_one(ApiClient, referral.sender_client_id))


def referral_parts_many(session: Session, referrals: list[Referral]) -> dict[uuid.UUID, ReferralParts]:
    """`referral_parts` of many referrals, by referral id, in two queries."""
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
    """A guardian relationship as a CodeableConcept: the v3 RoleCode when there is one."""
    if name in ROLE_OF:
        code, display = ROLE_OF[name]
        return {"coding": [{"system": ROLE_CODE, "code": code, "display": display}], "text": name}
    return {"text": name}


def _patient(referral: Referral) -> dict:
    """The child as the contained Patient `#patient`."""
    assert referral.child_birth_date is not None  # required, and NULL only once erased (see `_erased`)
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
    """The guardian as the contained RelatedPerson `#guardian`: the preferred contact has rank 1
    (a text preference is an `sms` telecom), the language the preferred communication."""
    preference = referral.guardian_contact_preference
    telecom = []
    if referral.guardian_phone:
        telecom.append(
            {"system": "phone", "value": referral.guardian_phone, "rank": 1 if preference == "phone" else None}
        )
        if preference == "text":
            telecom.append({"system": "sms", "value": referral.guardian_phone, "rank": 1})
    if referral.guardian_email:
        telecom.append(
            {"system": "email", "value": referral.guardian_email, "rank": 1 if preference == "email" else None}
        )
    assert referral.guardian_relationship is not None  # required, and NULL only once erased (see `_erased`)
    return {
        "resourceType": "RelatedPerson",
        "id": "guardian",
        "extension": [{"url": EXT_MAY_LEAVE_MESSAGE, "valueBoolean": referral.guardian_may_leave_message}],
        "patient": {"reference": "#patient"},
        "relationship": [_relationship_concept(referral.guardian_relationship)],
        "name": [{"text": referral.guardian_name}],
        "telecom": telecom,
        "communication": [
            {
                "language": {"coding": [{"system": LANGUAGE, "code": referral.guardian_preferred_language}]},
                "preferred": True,
            }
        ]
        if referral.guardian_preferred_language
        else [],
    }


def _consent(referral: Referral) -> dict:
    """The consent as the contained Consent `#consent`: active when obtained; who obtained it,
    how and who gave it in the referral-consent extension; the performer the Patient or the
    RelatedPerson when one of them gave it."""
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
    """The referrer as the contained PractitionerRole `#referrer`."""
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
    """The receiving Organization: the referral's own program (fixed when it was made), else
    its service's organization; named when the service still belongs to it."""
    team = service.program if referral.program_id and service.program_id == referral.program_id else None
    return {
        "reference": f"Organization/{owner_id(referral.program_id, service.organization_id)}",
        "display": team.name
        if team is not None
        else (service.organization.name if referral.program_id is None else None),
    }


def requester(sender: ApiClient) -> dict:
    """The sending API client as a logical reference to an Organization (`urn:uuid:<client id>`)."""
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
    """A referral as a ServiceRequest: the child, guardian, consent and referrer contained; an
    erased referral keeps only what is not personal, with the erasure extension."""
    service = parts.service
    if referral.erased_at is not None:
        return clean(
            {
                "resourceType": "ServiceRequest",
                "id": str(referral.id),
                "meta": meta(referral.updated_at, referral.version),
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
    return clean(
        {
            "resourceType": "ServiceRequest",
            "id": str(referral.id),
            "meta": meta(referral.updated_at, referral.version),
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
    """A referral as a Task: the lifecycle (status, statusReason, businessStatus, output), the
    ServiceRequest as focus, the receiving program as owner, the sending client as requester."""
    output = []
    if referral.outcome:
        output.append({"type": {"text": "Outcome"}, "valueString": referral.outcome})
    erased = _erased(referral) if referral.erased_at is not None else {}
    return clean(
        {
            "resourceType": "Task",
            "id": str(referral.id),
            "meta": meta(referral.updated_at, referral.version),
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
