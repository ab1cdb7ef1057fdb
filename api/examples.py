"""A working request example for every write operation of the OpenAPI document, so that
Swagger's "Try it out" starts from a body the API accepts, and the API's description.

The examples make and change example records of their own (fixed ids below), never the
directory's: run in the order of `ORDER` against a seeded database, with a key of the scope
each operation names, they all succeed (tests/api/test_examples.py runs them). The referral
names Help Me Grow Connecticut, which must take referrals (`accepts_referrals`) first.
"""

from __future__ import annotations

from apispec import BasePlugin

DESCRIPTION = """\
The program directory of Connecticut Children's Office for Community Child Health, as
[HSDS 3.0](https://docs.openreferral.org/en/latest/hsds/overview.html) (`/services`,
`/organizations`, `/programs`, `/locations`, `/service_at_locations`, `/taxonomy_terms`), and
closed-loop referrals between partner agencies and the hospital's programs (`/referrals`,
`/webhooks`), also as FHIR R4 under `/fhir`.

Reading the directory needs no key. Writing it, and every referral route, needs a key
(`Authorization: Bearer occh_...`) made with `flask clients create`; each operation names the
scope it needs. Writes of records take `If-Match` (the record's `ETag`); a new referral takes
an `Idempotency-Key`. Every request may send an `X-Request-ID`, echoed in the answer and in the
logs. Empty fields are left out of answers, never `null`.

Each write operation has an example body that works on the seeded directory: the examples
create example records (fixed ids), then replace and patch them; try them in the order
organizations, programs, taxonomy terms, locations, services, services at locations, referrals.
"""

# The example records' ids (none of the seed's).
ORGANIZATION = "0e0a7e1e-0000-4000-8000-000000000001"
PROGRAM = "0e0a7e1e-0000-4000-8000-000000000002"
TERM = "0e0a7e1e-0000-4000-8000-000000000003"
LOCATION = "0e0a7e1e-0000-4000-8000-000000000004"
SERVICE = "0e0a7e1e-0000-4000-8000-000000000005"
SERVICE_AT_LOCATION = "0e0a7e1e-0000-4000-8000-000000000006"
# Seed records the examples refer to.
OCCH = "25ec3250-05fb-5fff-92c6-a3c1be4b98da"  # Connecticut Children's Office for Community Child Health
HEALTHY_HOMES = "3521d2a6-fcd5-5474-8473-7efb4377ffcd"  # the Healthy Homes program
OCCH_TAXONOMY = "173beaf0-6dbc-5eeb-aeef-3f3b8130776b"
HELP_ME_GROW_CT = "abfe9b77-37de-537c-9f69-3fd3da4671f2"  # the service
HELP_ME_GROW = "57308218-07a9-5d7a-9470-a68fe2831051"  # its program

_organization = {
    "id": ORGANIZATION,
    "name": "Hartford Family Resource Center",
    "description": "A family resource center in Hartford (an example record).",
}
_program = {
    "id": PROGRAM,
    "slug": "example-program",
    "organization_id": OCCH,
    "name": "Example parenting program",
    "description": "Parenting classes for families of young children (an example record).",
}
_term = {
    "id": TERM,
    "taxonomy_id": OCCH_TAXONOMY,
    "code": "occh-example",
    "name": "Example category",
    "description": "A category of this directory (an example record).",
}
_location = {
    "id": LOCATION,
    "name": "Example family center",
    "location_type": "physical",
    "organization_id": OCCH,
    "addresses": [
        {
            "id": "0e0a7e1e-0000-4000-8000-000000000011",
            "address_1": "1 Example Way",
            "city": "Hartford",
            "state_province": "CT",
            "postal_code": "06106",
            "country": "US",
            "address_type": "physical",
        }
    ],
}
_service = {
    "id": SERVICE,
    "name": "Lead-safe cleaning kits",
    "description": "Cleaning kits and instructions for families whose home had lead hazards (an example record).",
    "organization_id": OCCH,
    "program_id": HEALTHY_HOMES,
    "status": "active",
    "phones": [{"id": "0e0a7e1e-0000-4000-8000-000000000021", "number": "860-555-0199"}],
    "languages": [{"id": "0e0a7e1e-0000-4000-8000-000000000022", "name": "Spanish", "code": "es"}],
}
# The referral of POST /referrals (the tests' referral body, tests/helpers.body, starts from it).
REFERRAL = {
    "service_id": HELP_ME_GROW_CT,
    "child": {"given_name": "Zephyrine", "family_name": "Quillfeather", "birth_date": "2024-03-02", "town": "Hartford"},
    "guardian": {
        "name": "Marisol Quillfeather",
        "relationship": "mother",
        "phone": "860-555-0142",
        "preferred_language": "es",
        "contact_preference": "text",
        "may_leave_message": True,
    },
    "consent": {
        "obtained": True,
        "obtained_by": "Dr. Ana Ruiz",
        "relationship": "mother",
        "obtained_at": "2026-11-20T15:00:00Z",
        "method": "verbal",
    },
    "reason": "Not yet talking at 2; parent worried about speech.",
    "urgency": "routine",
    "referrer": {"name": "Dr. Ana Ruiz", "organization": "Hartford Pediatrics", "phone": "860-555-0100"},
}
_patient, _related, _consent, _request = (f"urn:uuid:0e0a7e1e-0000-4000-8000-00000000003{i}" for i in range(4))
_bundle = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "fullUrl": _request,
            "resource": {
                "resourceType": "ServiceRequest",
                "contained": [
                    {
                        "resourceType": "PractitionerRole",
                        "id": "referrer",
                        "practitioner": {"display": "Dr. Ana Ruiz"},
                        "organization": {"display": "Hartford Pediatrics"},
                        "telecom": [{"system": "phone", "value": "860-555-0100"}],
                    }
                ],
                "status": "active",
                "intent": "order",
                "priority": "routine",
                "subject": {"reference": _patient},
                "requester": {"reference": "#referrer"},
                "performer": [{"reference": f"HealthcareService/{HELP_ME_GROW_CT}"}],
                "reasonCode": [{"text": "Not yet talking at 2; parent worried about speech."}],
                "supportingInfo": [{"reference": _related}, {"reference": _consent}],
            },
            "request": {"method": "POST", "url": "ServiceRequest"},
        },
        {
            "fullUrl": _patient,
            "resource": {
                "resourceType": "Patient",
                "name": [{"use": "official", "family": "Quillfeather", "given": ["Zephyrine"]}],
                "birthDate": "2024-03-02",
                "address": [{"city": "Hartford"}],
            },
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": _related,
            "resource": {
                "resourceType": "RelatedPerson",
                "extension": [
                    {
                        "url": "https://www.connecticutchildrens.org/fhir/occh/StructureDefinition/may-leave-message",
                        "valueBoolean": True,
                    }
                ],
                "patient": {"reference": _patient},
                "relationship": [
                    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}
                ],
                "name": [{"text": "Marisol Quillfeather"}],
                "telecom": [
                    {"system": "phone", "value": "860-555-0142"},
                    {"system": "sms", "value": "860-555-0142", "rank": 1},
                ],
                "communication": [
                    {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-US"}]}, "preferred": True}
                ],
            },
            "request": {"method": "POST", "url": "RelatedPerson"},
        },
        {
            "fullUrl": _consent,
            "resource": {
                "resourceType": "Consent",
                "extension": [
                    {
                        "url": "https://www.connecticutchildrens.org/fhir/occh/StructureDefinition/referral-consent",
                        "extension": [
                            {"url": "obtainedBy", "valueString": "Dr. Ana Ruiz"},
                            {"url": "method", "valueCode": "verbal"},
                        ],
                    }
                ],
                "status": "active",
                "scope": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
                    ]
                },
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": _patient},
                "dateTime": "2026-11-20T15:00:00Z",
                "performer": [{"reference": _related}],
            },
            "request": {"method": "POST", "url": "Consent"},
        },
        {
            "fullUrl": "urn:uuid:0e0a7e1e-0000-4000-8000-000000000034",
            "resource": {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
                "focus": {"reference": _request},
                "for": {"reference": _patient},
                "owner": {"reference": f"Organization/{HELP_ME_GROW}"},
            },
            "request": {"method": "POST", "url": "Task"},
        },
    ],
}

# (method, path as the OpenAPI document writes it) -> the example body.
EXAMPLES: dict[tuple[str, str], object] = {
    ("post", "/organizations"): _organization,
    ("put", "/organizations/{organization_id}"): {**_organization, "alternate_name": "HFRC"},
    ("patch", "/organizations/{organization_id}"): {"website": "https://www.example.org/family-center"},
    ("post", "/programs"): _program,
    ("put", "/programs/{id_or_slug}"): {**_program, "alternate_name": "Parenting classes"},
    ("patch", "/programs/{id_or_slug}"): {"alternate_name": "Parenting"},
    ("post", "/taxonomy_terms"): _term,
    ("put", "/taxonomy_terms/{term_id}"): {**_term, "name": "Example category, renamed"},
    ("patch", "/taxonomy_terms/{term_id}"): {"description": "Another description of the example category."},
    ("post", "/locations"): _location,
    ("put", "/locations/{location_id}"): {**_location, "name": "Example family center, main entrance"},
    ("patch", "/locations/{location_id}"): {"description": "Ring at the side door."},
    ("post", "/services"): _service,
    ("put", "/services/{service_id}"): {**_service, "email": "kits@example.org"},
    ("patch", "/services/{service_id}"): {
        "description": "Free cleaning kits for families whose home had lead hazards."
    },
    ("post", "/services/{service_id}/verify"): {"note": "Checked with the program by phone."},
    ("put", "/services/{service_id}/capacity"): {
        "status": "capacity",
        "available": 12,
        "maximum": 40,
        "unit": "kits",
        "expected_wait_days": 7,
    },
    ("post", "/service_at_locations"): {"id": SERVICE_AT_LOCATION, "service_id": SERVICE, "location_id": LOCATION},
    ("put", "/service_at_locations/{sal_id}"): {
        "id": SERVICE_AT_LOCATION,
        "service_id": SERVICE,
        "location_id": LOCATION,
        "description": "Kits are handed out here on weekdays.",
    },
    ("patch", "/service_at_locations/{sal_id}"): {"description": "Kits are handed out here on weekday mornings."},
    ("post", "/referrals"): REFERRAL,
    ("post", "/referrals/{referral_id}/status"): {"status": "accepted"},
    ("post", "/webhooks"): {"url": "https://receiver.example.org/occh-hooks", "events": ["referral.status_changed"]},
    ("post", "/fhir"): _bundle,
    ("patch", "/fhir/Task/{resource_id}"): [{"op": "replace", "path": "/status", "value": "in-progress"}],
    # A PUT sends back the Task as read (GET /fhir/Task/{id}) with a new status; only status,
    # statusReason and output may differ. The example shows those; the rest is the Task as read.
    ("put", "/fhir/Task/{resource_id}"): {"resourceType": "Task", "status": "accepted"},
}
# Path parameters of the example records (what "Try it out" fills in).
PATH_EXAMPLES = {
    "organization_id": ORGANIZATION,
    "id_or_slug": PROGRAM,
    "term_id": TERM,
    "location_id": LOCATION,
    "service_id": SERVICE,
    "sal_id": SERVICE_AT_LOCATION,
}


class ExamplesDocPlugin(BasePlugin):
    """Puts `EXAMPLES` into the request bodies, and `PATH_EXAMPLES` into the path parameters,
    of the operations they name."""

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs):
        for parameter in parameters or []:
            if isinstance(parameter, dict) and parameter.get("in") == "path" and parameter.get("name") in PATH_EXAMPLES:
                parameter["example"] = PATH_EXAMPLES[parameter["name"]]

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            example = EXAMPLES.get((method, path))
            if example is None or not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            for content in operation["requestBody"].get("content", {}).values():
                content["example"] = example
