"""Hostile input generated from our own spec: schemathesis over openapi.yaml.

Every operation of the committed openapi.yaml (the FHIR ones included) is called with
requests schemathesis generates from it, valid and invalid, in-process on both engines, with
a Bearer key this test makes (every scope) on the operations that declare `bearerAuth`. Every
default check applies: no server error, every status, content type, header and body as
documented, invalid requests rejected (unknown parameters and fields too), valid ones
accepted, no auth ignored, no method silently allowed.

Deterministic: Hypothesis derandomized, at most MAX_EXAMPLES generated cases per operation
(plus the coverage phase's fixed cases). Rate limits are off (TestConfig).

Valid data the spec cannot tell from invalid: some rules span several values, which
OpenAPI 3.0 cannot state (they are in the descriptions). For those operations a 422 (400 in
FHIR, its status for an invalid search or resource) also counts as accepting a
schema-valid request:
- lists of services and services at locations: `lat` and `lon` go together; `sort=distance`
  and `proximity` need a point;
- the HSDS lists (services, services at locations, organizations, taxonomies, taxonomy
  terms): `format=ndjson` streams every result and takes no `page`, `per_page` or `facets`;
  `minimal` and `full` exclude each other; a one-value parameter may be given once;
- POST /referrals: the service must exist and take referrals, the child be in its age range,
  the guardian reachable by the chosen contact preference;
- POST /webhooks: the URL must be an https URL of a public address;
- FHIR: search parameters follow FHIR's grammar (dates with prefixes, typed references), and
  a transaction Bundle must hold the resources of a referral.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api.extensions import db
from core import clients, webhooks
from models.vocab import SCOPES

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
MAX_EXAMPLES = 25
ACCEPTED = ["2xx", "401", "403", "404", "409"]
# Refusals of invalid input: the defaults, and the limits of api/limits.py (a generated
# invalid value can be long enough for a 413 or 414).
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428"]


def accepting(statuses: list[str], **where) -> dict:
    return {**where, "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED + statuses}}}


CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
    "checks": {
        "positive_data_acceptance": {"expected-statuses": ACCEPTED},
        "negative_data_rejection": {"expected-statuses": REJECTED},
        # A missing Idempotency-Key or If-Match is a 428 Precondition Required (documented).
        "missing_required_header": {"expected-statuses": ["400", "401", "403", "406", "415", "422", "428"]},
    },
    "operations": [
        # A list's query may be valid parameter by parameter and still longer than
        # MAX_QUERY_BYTES altogether: a 414, documented on every operation.
        accepting(
            ["414", "422"],
            **{
                "include-name": [
                    "GET /services",
                    "GET /service_at_locations",
                    "GET /organizations",
                    "GET /taxonomies",
                    "GET /taxonomy_terms",
                    "POST /referrals",
                    "POST /webhooks",
                    # Directory writes: the import's rules check references and ids that a
                    # schema cannot express (a 422 naming each field, documented).
                    "POST /services",
                    "PUT /services/{service_id}",
                    "PATCH /services/{service_id}",
                    "PUT /services/{service_id}/capacity",
                    "POST /organizations",
                    "POST /programs",
                    "POST /service_at_locations",
                    "POST /taxonomy_terms",
                    "POST /locations",
                    "PUT /locations/{location_id}",
                ]
            },
        ),
        accepting(["400", "422"], **{"include-path-regex": "^/fhir(/|$)"}),
    ],
}


class TestedApp:
    """The WSGI app of the running test (one per operation and engine, from the `app`
    fixture): the schema is loaded once, at import, and every request it sends, the checks'
    own too, goes through this."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


TESTED = TestedApp()


def without_request_examples(document: dict) -> dict:
    """openapi.yaml without its request examples (api/examples.py): they work only in their
    order, each with the key of its scope, as tests/api/test_examples.py sends them. Here every
    case is generated from the schemas."""
    for operations in document["paths"].values():
        for parameter in operations.get("parameters", []):
            parameter.pop("example", None)
        for operation in operations.values():
            if isinstance(operation, dict):
                for content in operation.get("requestBody", {}).get("content", {}).values():
                    content.pop("example", None)
    return document


schema = schemathesis.openapi.from_dict(
    without_request_examples(yaml.safe_load(SPEC.read_text())), config=SchemathesisConfig.from_dict(CONFIG)
)
schema.app = TESTED


@pytest.fixture
def bearer(app, monkeypatch):
    """A key with every scope, managing the Help Me Grow program; the app under test.
    Generated webhook host names resolve to a public address without asking DNS (nothing
    connects to it: no delivery runs here)."""
    monkeypatch.setattr(webhooks.addresses, "system_resolve", lambda host, port: ["93.184.215.14"])
    with app.app_context():
        new = clients.create_client(db.session, "Spec fuzzer", list(SCOPES), ["help-me-grow"])
        db.session.commit()
    TESTED.app = app
    yield {"Authorization": f"Bearer {new.key}"}
    TESTED.app = None


@schema.parametrize()
@settings(
    derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_every_operation_answers_as_documented(case, bearer):
    keyed = bool(case.operation.definition.raw.get("security"))
    # A case made invalid in its headers (the Authorization it requires left out) is sent as
    # made: adding the key would turn it back into a valid request.
    components = case.meta.components if case.meta is not None else {}
    bad_headers = any(
        "header" in str(where).lower() and "negative" in str(info.mode).lower() for where, info in components.items()
    )
    case.call_and_validate(headers=bearer if keyed and not bad_headers else None)
