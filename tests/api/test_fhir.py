"""FHIR R4 under /fhir: the directory and referrals, every resource parsed with fhir.resources
(its R4B models), on both engines."""

from __future__ import annotations

import copy
import uuid
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select

from api.extensions import db
from models import AuditEntry
from tests.helpers import (
    CHILD_NAME,
    FAMILY_NAME,
    FHIR_JSON,
    HELP_ME_GROW,
    HMG_CT,
    SERVICES,
    auth,
    body,
    bundle_for,
    count_referrals,
    move,
    one_engine,
    post_bundle,
    submit,
)

OCCH = "25ec3250-05fb-5fff-92c6-a3c1be4b98da"
MEDICAL_CENTER = "f662dacc-bc1f-524c-9397-09425e94fff9"
MAIN_CAMPUS = "59e630ee-050d-5bef-9e75-48ae29bdcf21"
HEALTHY_HOMES = "3521d2a6-fcd5-5474-8473-7efb4377ffcd"
UNKNOWN = (
    "a5b118f1-abc2-478f-87c7-0b89139e6f6d"  # no record has this id (fixed: the same test ids in every xdist worker)
)


def parse(resource: dict):
    """The resource as its fhir.resources R4B model (raises when it is not valid FHIR)."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def fhir_get(client, url, key=None, status=200):
    response = client.get(url, headers=auth(key) if key else {})
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    resource = response.get_json()
    parse(resource)
    for entry in resource.get("entry", []):
        if "resource" in entry:
            parse(entry["resource"])
    return resource


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def walk(client, url, key=None) -> tuple[list[dict], list[dict]]:
    """Every entry of a search, following `next` to the end; and each page's Bundle."""
    entries, pages = [], []
    while url:
        bundle = fhir_get(client, url, key)
        assert bundle["type"] == "searchset"
        pages.append(bundle)
        entries += bundle.get("entry", [])
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = local(links["next"]) if "next" in links else None
    return entries, pages


def ids(entries) -> list[str]:
    return [entry["resource"]["id"] for entry in entries]


def hsds_ids(client, query: str) -> set[str]:
    return {s["id"] for s in client.get(f"/services?per_page=100&{query}").get_json()["contents"]}


# ----------------------------------------------------------------------------- directory


def test_metadata_is_a_capability_statement(reader):
    client = reader  # only reads: the module's shared database
    statement = fhir_get(client, "/fhir/metadata")
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert types == {"HealthcareService", "Organization", "Location", "ServiceRequest", "Task"}
    assert [i["code"] for i in statement["rest"][0]["interaction"]] == ["transaction"]


def test_healthcare_service_pages_follow_next_to_the_end(reader):
    client = reader  # only reads: the module's shared database
    entries, pages = walk(client, "/fhir/HealthcareService?_count=5")
    assert len(entries) == len(SERVICES) == pages[0]["total"]
    assert len(set(ids(entries))) == len(entries), "no service twice"
    assert set(ids(entries)) == {s["id"] for s in SERVICES.values()}
    names = [e["resource"]["name"] for e in entries]
    assert names == sorted(names)
    assert len(pages) == 4 and all(p["total"] == len(SERVICES) for p in pages)
    second = {link["relation"]: link["url"] for link in pages[1]["link"]}
    assert "_page=1" in second["previous"] and "_count=5" in second["next"]
    assert entries[0]["fullUrl"].endswith(f"/fhir/HealthcareService/{entries[0]['resource']['id']}")


def test_healthcare_service_search_by_name(reader):
    client = reader  # only reads: the module's shared database
    entries, _ = walk(client, "/fhir/HealthcareService?name=help")
    assert sorted(e["resource"]["name"] for e in entries) == [
        "Help Me Grow Connecticut",
        "Help Me Grow National Center",
    ]
    entries, _ = walk(client, "/fhir/HealthcareService?name=GROW")  # a word of the name, any case
    assert len(entries) == 2
    entries, _ = walk(client, "/fhir/HealthcareService?name:contains=seat")
    assert [e["resource"]["name"] for e in entries] == ["Safe Kids Connecticut car seat clinics"]
    entries, _ = walk(client, "/fhir/HealthcareService?name:exact=Care coordination")
    assert [e["resource"]["name"] for e in entries] == ["Care coordination"]
    assert walk(client, "/fhir/HealthcareService?name=%25")[0] == [], "% is text, not a wildcard"


def test_healthcare_service_search_by_category_matches_the_hsds_filter(reader):
    client = reader  # only reads: the module's shared database
    entries, _ = walk(client, "/fhir/HealthcareService?service-category=occh-healthy-housing&_count=2")
    expected = hsds_ids(client, "category=occh-healthy-housing")
    assert len(expected) >= 3 and set(ids(entries)) == expected
    taxonomy = client.get("/taxonomies").get_json()["contents"][0]["id"]
    entries, _ = walk(client, f"/fhir/HealthcareService?service-category=urn:uuid:{taxonomy}|occh-healthy-housing")
    assert set(ids(entries)) == expected
    assert walk(client, "/fhir/HealthcareService?service-category=http://other.example|occh-healthy-housing")[0] == []
    either, _ = walk(client, "/fhir/HealthcareService?service-category=occh-healthy-housing,occh-development")
    assert set(ids(either)) == expected | hsds_ids(client, "category=occh-development")
    category = entries[0]["resource"]["category"]
    assert any(c["coding"][0]["system"] == f"urn:uuid:{taxonomy}" for c in category)


def test_healthcare_service_search_by_hl7_service_type(reader):
    client = reader  # only reads: the module's shared database
    entries, _ = walk(
        client, "/fhir/HealthcareService?service-type=http://terminology.hl7.org/CodeSystem/service-type|128"
    )
    assert [e["resource"]["name"] for e in entries] == ["Referrals to weatherization programs"]
    coding = entries[0]["resource"]["type"][0]["coding"][0]
    assert coding == {
        "system": "http://terminology.hl7.org/CodeSystem/service-type",
        "code": "128",
        "display": "Housing Information/Referral",
    }


def test_healthcare_service_search_by_organization(reader):
    client = reader  # only reads: the module's shared database
    entries, _ = walk(client, f"/fhir/HealthcareService?organization=Organization/{HELP_ME_GROW}")
    assert set(ids(entries)) == hsds_ids(client, f"program_id={HELP_ME_GROW}")
    assert {e["resource"]["providedBy"]["reference"] for e in entries} == {f"Organization/{HELP_ME_GROW}"}
    of_occh, _ = walk(client, f"/fhir/HealthcareService?organization={OCCH}")
    assert set(ids(of_occh)) == hsds_ids(client, f"organization_id={OCCH}") > set(ids(entries))
    both, _ = walk(client, f"/fhir/HealthcareService?organization={OCCH}&organization=Organization/{HEALTHY_HOMES}")
    assert set(ids(both)) == hsds_ids(client, f"program_id={HEALTHY_HOMES}")
    assert walk(client, f"/fhir/HealthcareService?organization=Organization/{uuid.uuid4()}")[0] == []


def test_healthcare_service_search_by_last_updated(reader):
    client = reader  # only reads: the module's shared database
    assert len(walk(client, "/fhir/HealthcareService?_lastUpdated=gt2000-01-01")[0]) == len(SERVICES)
    assert walk(client, "/fhir/HealthcareService?_lastUpdated=gt2999-01-01T00:00:00Z")[0] == []
    assert walk(client, "/fhir/HealthcareService?_lastUpdated=lt2000-01")[0] == []
    ranged, _ = walk(client, "/fhir/HealthcareService?_lastUpdated=ge2000&_lastUpdated=lt2999-12-31")
    assert len(ranged) == len(SERVICES)
    stamp = ranged[0]["resource"]["meta"]["lastUpdated"]
    assert ranged[0]["resource"]["id"] in ids(walk(client, f"/fhir/HealthcareService?_lastUpdated=eq{stamp}")[0])


@pytest.mark.parametrize(
    "query",
    ["colour=blue", "_count=0", "_count=101", "_lastUpdated=yesterday", "organization=Location/123", "active=maybe"],
)
@one_engine
def test_a_bad_search_parameter_is_a_400_operation_outcome(client, query):
    outcome = fhir_get(client, f"/fhir/HealthcareService?{query}", status=400)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "invalid"


def test_read_directory_resources_by_id(reader):
    client = reader  # only reads: the module's shared database
    service = fhir_get(client, f"/fhir/HealthcareService/{HMG_CT}")
    assert service["name"] == "Help Me Grow Connecticut" and service["active"] is True
    assert service["telecom"] == [{"system": "phone", "value": "211", "use": "work"}], "phone and contact points, once"
    assert [m["coding"][0]["code"] for m in service["referralMethod"]] == ["phone"], (
        "no electronic referrals until turned on"
    )
    assert service["coverageArea"] == [{"display": "Connecticut"}]
    assert {c["coding"][0]["code"] for c in service["category"]} >= {"occh-early-identification"}
    program = fhir_get(client, service["providedBy"]["reference"].replace("Organization", "/fhir/Organization"))
    assert program["name"] == "Help Me Grow" and program["partOf"]["reference"] == f"Organization/{OCCH}"
    occh = fhir_get(client, f"/fhir/Organization/{OCCH}")
    assert "alias" not in occh and occh["partOf"]["reference"] == f"Organization/{MEDICAL_CENTER}"
    center = fhir_get(client, f"/fhir/Organization/{MEDICAL_CENTER}")
    assert center["address"][0]["postalCode"] == "06106"
    campus = fhir_get(client, f"/fhir/Location/{MAIN_CAMPUS}")
    assert (
        campus["address"]["city"] == "Hartford"
        and campus["managingOrganization"]["reference"] == f"Organization/{MEDICAL_CENTER}"
    )


def test_location_position_when_known(app, client):
    from models import Location

    with app.app_context():
        db.session.get(Location, uuid.UUID(MAIN_CAMPUS)).latitude = 41.7548
        db.session.get(Location, uuid.UUID(MAIN_CAMPUS)).longitude = -72.6827
        db.session.commit()
    campus = fhir_get(client, f"/fhir/Location/{MAIN_CAMPUS}")
    assert campus["position"] == {"latitude": 41.7548, "longitude": -72.6827}


@pytest.mark.parametrize(
    "method, url, status",
    [
        ("get", f"/fhir/HealthcareService/{UNKNOWN}", 404),
        ("get", "/fhir/HealthcareService/not-a-uuid", 404),
        ("get", f"/fhir/Organization/{UNKNOWN}", 404),
        ("get", f"/fhir/Location/{UNKNOWN}", 404),
        ("get", "/fhir/Patient/123", 404),
        ("delete", "/fhir/metadata", 405),
    ],
)
def test_errors_under_fhir_are_operation_outcomes(reader, method, url, status):
    client = reader  # only reads: the module's shared database
    response = getattr(client, method)(url)
    assert response.status_code == status and response.mimetype == FHIR_JSON
    outcome = parse(response.get_json())
    assert outcome.issue[0].code in ("not-found", "not-supported")


def test_the_rest_of_the_api_keeps_its_error_envelope(reader):
    client = reader  # only reads: the module's shared database
    response = client.get(f"/services/{uuid.uuid4()}")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


# ----------------------------------------------------------------------------- reading referrals


def test_a_referral_reads_as_service_request_and_task_for_sender_and_program(app, client, keys):
    referral = submit(client, keys).get_json()
    for who in ("sender", "receiver"):
        request = fhir_get(client, f"/fhir/ServiceRequest/{referral['id']}", keys[who])
        assert request["status"] == "active" and request["priority"] == "routine"
        contained = {r["resourceType"]: r for r in request["contained"]}
        assert contained["Patient"]["name"][0] == {"use": "official", "family": FAMILY_NAME, "given": [CHILD_NAME]}
        assert contained["Patient"]["birthDate"] == "2024-03-02"
        assert contained["RelatedPerson"]["relationship"][0]["coding"][0]["code"] == "MTH"
        assert contained["Consent"]["status"] == "active"
        assert contained["PractitionerRole"]["organization"]["display"] == "Hartford Pediatrics"
        assert request["performer"][0]["reference"] == f"HealthcareService/{HMG_CT}"
        assert request["reasonCode"][0]["text"] == body()["reason"]

        task = fhir_get(client, f"/fhir/Task/{referral['id']}", keys[who])
        assert task["status"] == "requested" and task["intent"] == "order"
        assert task["focus"]["reference"] == f"ServiceRequest/{referral['id']}"
        assert task["owner"] == {"reference": f"Organization/{HELP_ME_GROW}", "display": "Help Me Grow"}
        assert task["requester"]["type"] == "Organization" and task["requester"]["display"] == "Hartford Pediatrics"
        assert task["requester"]["identifier"]["value"].startswith("urn:uuid:")
        assert task["for"] == {"reference": "#patient"}
    response = client.get(f"/fhir/Task/{referral['id']}", headers=auth(keys["sender"]))
    assert response.headers["Cache-Control"] == "no-store" and response.headers["ETag"] == 'W/"1"'
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEntry.action).where(AuditEntry.referral_id == uuid.UUID(referral["id"]))
        )
        assert sorted(actions) == ["create"] + ["read"] * 5


def test_a_referral_is_invisible_to_another_partner(client, keys):
    referral_id = submit(client, keys).get_json()["id"]
    for kind in ("ServiceRequest", "Task"):
        outcome = fhir_get(client, f"/fhir/{kind}/{referral_id}", keys["stranger"], status=404)
        assert outcome["issue"][0]["code"] == "not-found"
        assert CHILD_NAME not in str(outcome)
    assert fhir_get(client, "/fhir/Task", keys["stranger"])["total"] == 0


def test_referral_resources_need_a_key_with_the_scope(client, keys):
    referral_id = submit(client, keys).get_json()["id"]
    for url in (f"/fhir/Task/{referral_id}", f"/fhir/ServiceRequest/{referral_id}", "/fhir/Task"):
        response = client.get(url)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
        assert parse(response.get_json()).issue[0].code == "login"
        assert fhir_get(client, url, keys["admin"], status=403)["issue"][0]["code"] == "forbidden"
    response = client.post("/fhir", json=bundle_for(body()), headers=auth(keys["receiver"], **{"Idempotency-Key": "k"}))
    assert response.status_code == 403, "only partners submit"


# ----------------------------------------------------------------------------- polling Tasks


def test_polling_tasks_by_owner_status_and_last_updated(client, keys):
    first = submit(client, keys).get_json()
    second = submit(client, keys).get_json()
    assert move(client, keys, second["id"], "receiver", "accepted").status_code == 200
    owner = f"owner=Organization/{HELP_ME_GROW}"

    def task_ids(query, who="receiver"):
        entries, _ = walk(client, f"/fhir/Task?{query}", keys[who])
        return ids(entries)

    assert task_ids(f"{owner}&status=requested") == [first["id"]]
    assert task_ids(f"{owner}&status=accepted") == [second["id"]]
    assert task_ids(f"{owner}&status=requested,accepted&_count=1") == [first["id"], second["id"]]
    seen = fhir_get(client, f"/fhir/Task/{first['id']}", keys["receiver"])["lastModified"]
    assert task_ids(f"{owner}&_lastUpdated=gt{seen}") == [second["id"]]
    assert task_ids(f"_lastUpdated=ge{seen}", who="sender") == [first["id"], second["id"]]
    assert task_ids(f"owner=Organization/{HEALTHY_HOMES}") == []
    assert task_ids("status=accepted", who="sender") == [second["id"]]

    move(client, keys, second["id"], "receiver", "on-hold", reason="Family travelling until December.")
    task = fhir_get(client, f"/fhir/Task/{second['id']}", keys["sender"])
    assert task["status"] == "on-hold" and task["statusReason"]["text"] == "Family travelling until December."
    assert task_ids(f"{owner}&status=on-hold&_lastUpdated=gt{seen}") == [second["id"]]
    move(client, keys, second["id"], "receiver", "completed", outcome="Family connected to Birth to Three.")
    task = fhir_get(client, f"/fhir/Task/{second['id']}", keys["sender"])
    assert task["status"] == "completed" and task["output"][0]["valueString"] == "Family connected to Birth to Three."
    request = fhir_get(client, f"/fhir/ServiceRequest/{second['id']}", keys["sender"])
    assert request["status"] == "completed"


@pytest.mark.parametrize("query", ["status=done", "_lastUpdated=lt2026-01-01", "owner=HealthcareService/1", "page=2"])
@one_engine
def test_bad_task_search_is_a_400(client, keys, query):
    assert fhir_get(client, f"/fhir/Task?{query}", keys["sender"], status=400)["resourceType"] == "OperationOutcome"


# ----------------------------------------------------------------------------- creating by Bundle


def referral_of(response) -> str:
    bundle = response.get_json()
    parse(bundle)
    request = next(e for e in bundle["entry"] if e.get("resource", {}).get("resourceType") == "ServiceRequest")
    parse(request["resource"])
    return request["resource"]["id"]


def same_fields(referral: dict) -> dict:
    return {k: v for k, v in referral.items() if k not in ("id", "created_at", "updated_at")}


def test_the_example_bundle_is_valid_fhir():
    parse(bundle_for(body(), if_none_exist="identifier=https://partner.example/referrals|1142"))


def test_a_bundle_makes_the_same_referral_as_post_referrals(client, keys):
    response = post_bundle(client, keys, bundle_for(body()))
    assert response.status_code == 200 and response.mimetype == FHIR_JSON
    answer = response.get_json()
    assert answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 5
    for entry in answer["entry"]:
        for resource in [entry.get("resource"), entry["response"].get("outcome")]:
            if resource:
                parse(resource)
    referral_id = referral_of(response)
    assert answer["entry"][4]["resource"]["id"] == referral_id
    through_fhir = client.get(f"/referrals/{referral_id}", headers=auth(keys["receiver"])).get_json()
    direct = client.get(submit(client, keys).headers["Location"], headers=auth(keys["receiver"])).get_json()
    assert same_fields(through_fhir) == same_fields(direct)
    listed = client.get("/referrals", headers=auth(keys["sender"])).get_json()
    assert referral_id in [r["id"] for r in listed["contents"]]


def test_a_service_request_read_back_into_a_bundle_makes_the_same_referral(client, keys):
    """FHIR in, /referrals out; /referrals in, FHIR out: the same data both ways."""
    original = submit(
        client,
        keys,
        guardian={**body()["guardian"], "email": "m.q@example.org", "contact_preference": "email"},
        child={**body()["child"], "postcode": "06106"},
    ).get_json()
    request = fhir_get(client, f"/fhir/ServiceRequest/{original['id']}", keys["sender"])
    contained = {r["resourceType"]: r for r in request.pop("contained")}
    refs = {kind: f"urn:uuid:{uuid.uuid4()}" for kind in ("Patient", "RelatedPerson", "Consent", "ServiceRequest")}
    request.pop("id"), request.pop("meta")
    request["contained"] = [contained["PractitionerRole"]]
    request["subject"] = {"reference": refs["Patient"]}
    request["performer"] = request["performer"][:1]
    patient = {k: v for k, v in contained["Patient"].items() if k != "id"}
    guardian = {k: v for k, v in contained["RelatedPerson"].items() if k != "id"}
    guardian["patient"] = {"reference": refs["Patient"]}
    consent = {k: v for k, v in contained["Consent"].items() if k not in ("id", "performer")}
    consent["patient"] = {"reference": refs["Patient"]}
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "focus": {"reference": refs["ServiceRequest"]},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": refs[r["resourceType"]], "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for r in (request, patient, guardian, consent)
        ]
        + [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": task, "request": {"method": "POST", "url": "Task"}}],
    }
    parse(bundle)
    response = post_bundle(client, keys, bundle, key="round-trip")
    assert response.status_code == 200, response.get_json()
    copy_ = client.get(f"/referrals/{referral_of(response)}", headers=auth(keys["sender"])).get_json()
    assert same_fields(copy_) == same_fields(original)


def test_the_same_bundle_and_key_return_the_same_referral(app, client, keys):
    bundle = bundle_for(body())
    first = post_bundle(client, keys, bundle, key="visit-7")
    again = post_bundle(client, keys, bundle, key="visit-7")
    assert referral_of(again) == referral_of(first)
    assert [e["response"]["status"] for e in again.get_json()["entry"]] == ["200 OK"] * 5
    assert count_referrals(app) == 1
    other = copy.deepcopy(bundle)
    other["entry"][0]["resource"]["reasonCode"][0]["text"] = "Something else entirely."
    conflict = post_bundle(client, keys, other, key="visit-7")
    assert conflict.status_code == 409 and conflict.mimetype == FHIR_JSON
    assert parse(conflict.get_json()).issue[0].code == "conflict"
    assert count_referrals(app) == 1


def test_if_none_exist_is_the_idempotency_key(app, client, keys):
    bundle = bundle_for(body(), if_none_exist="identifier=https://partner.example/referrals|1142")
    first = post_bundle(client, keys, bundle, key=None)
    again = post_bundle(client, keys, bundle, key=None)
    assert first.status_code == again.status_code == 200
    assert referral_of(first) == referral_of(again) and count_referrals(app) == 1
    missing = post_bundle(client, keys, bundle_for(body()), key=None)
    assert missing.status_code == 428 and parse(missing.get_json()).issue[0].code == "required"
    assert count_referrals(app) == 1


def _without(kind):
    def change(bundle):
        bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != kind]

    return change


def _set(index, key, value):
    def change(bundle):
        bundle["entry"][index]["resource"][key] = value

    return change


@pytest.mark.parametrize(
    "change, status, expression",
    [
        (_without("Consent"), 400, "Bundle.entry.resource.ofType(Consent)"),
        (_without("Task"), 400, "Bundle.entry.resource.ofType(Task)"),
        (_set(3, "status", "rejected"), 422, "Consent.status"),
        (_set(1, "birthDate", "2999-01-01"), 422, "Patient.birthDate"),
        (_set(1, "birthDate", "not-a-date"), 422, "Patient.birthDate"),
        (_set(1, "address", []), 422, "Patient.address.city"),
        (_set(0, "priority", "whenever"), 422, "ServiceRequest.priority"),
        (_set(0, "performer", []), 422, "ServiceRequest.performer"),
        (
            _set(
                0, "performer", [{"reference": f"HealthcareService/{SERVICES['Help Me Grow National Center']['id']}"}]
            ),
            422,
            "ServiceRequest.performer",
        ),
        (_set(4, "status", "accepted"), 400, "Task.status"),
        (_set(4, "focus", {"reference": "urn:uuid:elsewhere"}), 400, "Task.focus"),
        (lambda b: b.update(type="batch"), 400, "Bundle.type"),
    ],
)
def test_an_invalid_bundle_is_an_operation_outcome_and_writes_nothing(app, client, keys, change, status, expression):
    bundle = bundle_for(body())
    change(bundle)
    response = post_bundle(client, keys, bundle)
    assert response.status_code == status, response.get_json()
    outcome = parse(response.get_json())
    assert expression in [e for issue in outcome.issue for e in (issue.expression or [])]
    text = response.get_data(as_text=True)
    assert CHILD_NAME not in text and FAMILY_NAME not in text and "2999" not in text
    assert count_referrals(app) == 0


@pytest.mark.parametrize("payload", ["not json", "[]", '{"resourceType": "Patient"}'])
def test_a_body_that_is_not_a_bundle_is_a_400(app, client, keys, payload):
    response = client.post(
        "/fhir", data=payload, content_type=FHIR_JSON, headers=auth(keys["sender"], **{"Idempotency-Key": "x"})
    )
    assert response.status_code == 400 and parse(response.get_json()).issue[0].code == "invalid"
    assert count_referrals(app) == 0


def test_the_documented_example_bundle_makes_a_referral(client, keys):
    """The Bundle shown to FHIR integrators in docs/fhir.md is valid FHIR and works as shown."""
    import json
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "fhir.md").read_text()
    example = next(block for block in doc.split("```json\n")[1:] if '"resourceType": "Bundle"' in block)
    bundle = json.loads(example.split("```", 1)[0])
    parse(bundle)
    response = post_bundle(client, keys, bundle, key=None)
    assert response.status_code == 200, response.get_json()
    referral = client.get(f"/referrals/{referral_of(response)}", headers=auth(keys["sender"])).get_json()
    assert referral["child"]["given_name"] == "Ana" and referral["guardian"]["contact_preference"] == "text"
    assert (
        referral["consent"]["relationship"] == "mother"
        and referral["referrer"]["organization"] == "Hartford Pediatrics"
    )


def test_no_personal_data_in_logs(client, keys, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    bundle = bundle_for(body())
    referral_id = referral_of(post_bundle(client, keys, bundle))
    bad = copy.deepcopy(bundle)
    bad["entry"][1]["resource"]["birthDate"] = "2999-01-01"
    post_bundle(client, keys, bad, key="another")
    fhir_get(client, f"/fhir/Task/{referral_id}", keys["receiver"])
    fhir_get(client, f"/fhir/Task?owner=Organization/{HELP_ME_GROW}", keys["receiver"])
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (CHILD_NAME, FAMILY_NAME, "860-555-0142", keys["sender"]):
        assert secret not in text
