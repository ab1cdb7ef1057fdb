"""The CapabilityStatement (`GET /fhir/metadata`): the resources, interactions and search
parameters this server answers. Keep it in step with `api/fhir.py` when either changes."""

from __future__ import annotations

from core.fhir.common import CAPABILITY_DATE, FHIR_VERSION, MEDIA_TYPE


def _search(name: str, kind: str, doc: str) -> dict:
    """A searchParam entry."""
    return {"name": name, "type": kind, "documentation": doc}


PAGING = [
    _search("_count", "number", "Entries per page, 1 to 100 (default 20)."),
    _search("_page", "number", "Page number, from 1 (follow the Bundle's next link)."),
]


def _healthcare_service() -> dict:
    """HealthcareService: read and search."""
    return {
        "type": "HealthcareService",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [
            _search("name", "string", "Name starts with (also name:contains, name:exact)."),
            _search("service-category", "token", "OCCH category code, with every category below it."),
            _search("service-type", "token", "HL7 service-type code."),
            _search("organization", "reference", "The providing Organization (a program or an organization)."),
            _search("active", "token", "true or false; all services when absent."),
            _search("_id", "token", "Service ids."),
            _search("_lastUpdated", "date", "When the service record last changed."),
        ]
        + PAGING,
    }


def _task() -> dict:
    """Task: read, search, update and patch (a move of the referral's lifecycle)."""
    return {
        "type": "Task",
        "interaction": [
            {"code": "read"},
            {"code": "search-type"},
            {
                "code": "update",
                "documentation": "PUT the Task as read with status, statusReason and output "
                "changed: one move of the referral's lifecycle, as POST /referrals/{id}/status. "
                'If-Match: W/"<versionId>" is checked when sent (412 when stale).',
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
            _search("owner", "reference", "The receiving Organization (program)."),
            _search("status", "token", "Task status codes, comma-separated."),
            _search("_lastUpdated", "date", "Changed after: gt, sa or ge (for polling)."),
        ]
        + PAGING,
    }


def _rest() -> dict:
    """The server's REST capabilities: the resources, their interactions, the transaction."""
    return {
        "mode": "server",
        "documentation": "Directory reads are public. Referral resources need an API key "
        "(Authorization: Bearer KEY) with the scope referrals:submit or referrals:manage, "
        "and show only the referrals that key may see.",
        "security": {
            "description": "Bearer API keys issued by OCCH; scopes referrals:submit and referrals:manage.",
        },
        "resource": [
            _healthcare_service(),
            {"type": "Organization", "interaction": [{"code": "read"}]},
            {"type": "Location", "interaction": [{"code": "read"}]},
            {"type": "ServiceRequest", "interaction": [{"code": "read"}]},
            _task(),
        ],
        "interaction": [
            {
                "code": "transaction",
                "documentation": "POST a transaction Bundle of ServiceRequest, Patient, RelatedPerson, "
                "Consent and Task to create a referral (scope referrals:submit).",
            }
        ],
    }


def capability_statement(base: str) -> dict:
    """The CapabilityStatement of the server whose FHIR base URL is `base`."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": CAPABILITY_DATE,
        "publisher": "Connecticut Children's Office for Community Child Health",
        "kind": "instance",
        "implementation": {"description": "OCCH program directory and referral API", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": [MEDIA_TYPE, "json"],
        "rest": [_rest()],
    }
