"""Every write operation of the OpenAPI document has a request example, and each example,
sent to its route in the documented order with a key of the scope it needs (and If-Match,
Idempotency-Key where required), is accepted: Swagger's "Try it out" starts from a working body."""

from __future__ import annotations

import json

from api.extensions import db
from core import clients, webhooks
from tests.helpers import auth, one_engine

WRITES = ("post", "put", "patch")
# The order the examples run in, as the document's description says.
ORDER = [
    ("post", "/organizations"),
    ("put", "/organizations/{organization_id}"),
    ("patch", "/organizations/{organization_id}"),
    ("post", "/programs"),
    ("put", "/programs/{id_or_slug}"),
    ("patch", "/programs/{id_or_slug}"),
    ("post", "/taxonomy_terms"),
    ("put", "/taxonomy_terms/{term_id}"),
    ("patch", "/taxonomy_terms/{term_id}"),
    ("post", "/locations"),
    ("put", "/locations/{location_id}"),
    ("patch", "/locations/{location_id}"),
    ("post", "/services"),
    ("put", "/services/{service_id}"),
    ("patch", "/services/{service_id}"),
    ("post", "/services/{service_id}/verify"),
    ("put", "/services/{service_id}/capacity"),
    ("post", "/service_at_locations"),
    ("put", "/service_at_locations/{sal_id}"),
    ("patch", "/service_at_locations/{sal_id}"),
    ("post", "/webhooks"),
    ("post", "/referrals"),
    ("post", "/referrals/{referral_id}/status"),
    ("post", "/fhir"),
    ("put", "/fhir/Task/{resource_id}"),
    ("patch", "/fhir/Task/{resource_id}"),
]


@one_engine
def test_every_write_operation_has_an_example_and_the_description_is_there(app):
    client = app.test_client()
    document = client.get("/openapi.json").get_json()
    assert "referrals" in document["info"]["description"] and "X-Request-ID" in document["info"]["description"]
    documented = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in WRITES and "requestBody" in operation:
                documented.append((method, path))
                for media, content in operation["requestBody"]["content"].items():
                    assert "example" in content, (method, path, media)
    assert sorted(documented) == sorted(ORDER)


def test_each_documented_example_is_accepted(app, client, referrals_on, monkeypatch):
    with app.app_context():
        made = {
            "admin": clients.create_client(db.session, "Directory admin", ["directory:admin"], []),
            "sender": clients.create_client(db.session, "Hartford Pediatrics", ["referrals:submit"], []),
            "receiver": clients.create_client(db.session, "Help Me Grow staff", ["referrals:manage"], ["help-me-grow"]),
        }
        db.session.commit()
        keys = {name: new.key for name, new in made.items()}
    # The example receiver's name, resolved as DNS would (the tests use no network).
    monkeypatch.setattr(webhooks.addresses, "system_resolve", lambda host, port: ["93.184.215.14"])
    document = client.get("/openapi.json").get_json()
    referral_id = None
    for method, path in ORDER:
        operation = document["paths"][path][method]
        media, content = next(iter(operation["requestBody"]["content"].items()))
        example = content["example"]
        values = {
            p["name"]: p.get("example") for p in document["paths"][path].get("parameters", []) if p["in"] == "path"
        }
        values.update(referral_id=referral_id, resource_id=referral_id)
        url = path.format(**values)
        who = "admin"
        if path.startswith("/referrals") or path.startswith("/fhir") or path == "/webhooks":
            who = "receiver" if (path.endswith("/status") or path.startswith("/fhir/Task")) else "sender"
        headers = auth(keys[who])
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if "If-Match" in names:
            record = url.removesuffix("/verify").removesuffix("/capacity").removesuffix("/status")
            read = client.get(record, headers=headers)
            assert read.status_code == 200, (url, read.get_json())
            headers["If-Match"] = read.headers["ETag"]
            if (method, path) == ("put", "/fhir/Task/{resource_id}"):
                example = {**read.get_json(), **example}  # the Task as read, with the example's status
        if "Idempotency-Key" in names:
            headers["Idempotency-Key"] = f"example-{method}-{path}"
        answer = client.open(url, method=method.upper(), data=json.dumps(example), content_type=media, headers=headers)
        assert 200 <= answer.status_code < 300, (method, path, answer.get_data(as_text=True))
        if path == "/referrals":
            referral_id = answer.get_json()["id"]
        if path == "/fhir":  # the Task routes below act on the referral the Bundle made
            referral_id = next(
                e["resource"]["id"]
                for e in answer.get_json()["entry"]
                if e.get("resource", {}).get("resourceType") == "Task"
            )
