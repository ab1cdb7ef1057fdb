"""OperationOutcome, the body of every FHIR error, and the map from a referral request's
field errors to where those fields sit in a transaction Bundle."""

from __future__ import annotations

from typing import Any

from core.fhir.common import EXT_CONSENT, EXT_MAY_LEAVE_MESSAGE

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
    issues: list[dict[str, Any]] = [{"severity": severity, "code": code, "diagnostics": message}]
    for path, messages in flatten_errors(errors or {}):
        issues.append(
            {
                "severity": "error",
                "code": "invalid" if status != 422 else "business-rule",
                "diagnostics": "; ".join(messages),
                "expression": [path],
            }
        )
    return {"resourceType": "OperationOutcome", "issue": issues}


def flatten_errors(errors: dict, prefix: str = ""):
    """(dotted path, messages) for each leaf of a nested error dict (marshmallow's shape)."""
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from flatten_errors(value, path)
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
    for path, messages in flatten_errors(errors):
        path = path.removeprefix("json.")
        parts = path.split(".")
        key = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in FHIR_PATH), None)
        out.setdefault(FHIR_PATH[key] if key else path, []).extend(messages)
    return out
