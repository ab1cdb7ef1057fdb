"""Capacity and waitlist, and referrals turned on by a program's staff."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from api.extensions import db
from core import clients
from models import Service, utcnow
from tests.helpers import HMG_CT, INSPECTIONS, PATCH, auth, one_engine, read, referral_body

EXT_CAPACITY = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)


@pytest.fixture
def keys(app):
    with app.app_context():
        made = {
            "staff": clients.create_client(db.session, "Healthy Homes staff", ["directory:write"], ["healthy-homes"]),
            "partner": clients.create_client(db.session, "Hartford Pediatrics", ["referrals:submit"], []),
        }
        db.session.commit()
        return {name: new.key for name, new in made.items()}


def set_capacity(client, key, service_id=INSPECTIONS, **body):
    _, etag = read(client, service_id)
    return client.put(f"/services/{service_id}/capacity", json=body, headers=auth(key, **{"If-Match": etag}))


def turn_on_referrals(client, key, service_id=INSPECTIONS, on=True):
    _, etag = read(client, service_id)
    response = client.patch(
        f"/services/{service_id}",
        data=json.dumps({"accepts_referrals": on}),
        content_type=PATCH,
        headers=auth(key, **{"If-Match": etag}),
    )
    assert response.status_code == 200, response.get_json()


def refer(client, keys, service_id=INSPECTIONS):
    return client.post(
        "/referrals",
        json=referral_body(service_id),
        headers=auth(keys["partner"], **{"Idempotency-Key": str(uuid.uuid4())}),
    )


def test_a_referral_succeeds_only_after_staff_turn_referrals_on(client, keys):
    turn_on_referrals(client, keys["staff"], on=False)  # as the seed has it (no page says a service takes them)
    refused = refer(client, keys)
    assert refused.status_code == 422
    assert "does not accept referrals" in refused.get_json()["message"]
    turn_on_referrals(client, keys["staff"])
    assert read(client)[0]["accepts_referrals"] is True
    assert refer(client, keys).status_code == 201


def test_staff_set_capacity_served_as_hsds_capacities_and_on_fhir(client, keys):
    response = set_capacity(
        client, keys["staff"], status="waitlist", available=0, maximum=40, unit="families", expected_wait_days=21
    )
    assert response.status_code == 200, response.get_json()
    record, _ = read(client)
    [capacity] = record["capacities"]
    assert capacity["status"] == "waitlist"
    assert (capacity["available"], capacity["maximum"], capacity["unit"]["name"]) == (0, 40, "families")
    assert capacity["expected_wait_days"] == 21
    fhir = client.get(f"/fhir/HealthcareService/{INSPECTIONS}").get_json()
    [extension] = [e for e in fhir["extension"] if e["url"] == EXT_CAPACITY]
    assert extension["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "waitlist"
    history = client.get(f"/services/{INSPECTIONS}/history", headers=auth(keys["staff"])).get_json()
    assert history[0]["action"] == "capacity"
    assert {"field": "capacity.status", "from": None, "to": "waitlist"} in history[0]["changes"]


def test_accepting_new_filters_by_a_fresh_status(app, client, keys):
    def accepting(value):
        found = client.get("/services", query_string={"accepting_new": value, "per_page": 100}).get_json()
        return {s["id"] for s in found["contents"]}

    assert INSPECTIONS not in accepting("true") and INSPECTIONS in accepting("false")
    assert set_capacity(client, keys["staff"], status="capacity").status_code == 200
    assert INSPECTIONS in accepting("true") and INSPECTIONS not in accepting("false")
    assert set_capacity(client, keys["staff"], status="no-capacity").status_code == 200
    assert INSPECTIONS not in accepting("true")
    assert HMG_CT in accepting("false")


def test_a_status_older_than_the_setting_is_served_as_unknown(app, client, keys):
    assert set_capacity(client, keys["staff"], status="no-capacity").status_code == 200
    turn_on_referrals(client, keys["staff"])
    assert refer(client, keys).status_code == 422
    with app.app_context():
        old = utcnow() - timedelta(days=app.config["CAPACITY_STALE_DAYS"] + 1)
        db.session.execute(update(Service).where(Service.id == uuid.UUID(INSPECTIONS)).values(capacity_updated=old))
        db.session.commit()
    body = read(client)[0]
    assert body["capacities"][0]["status"] == "unknown"
    assert "unit" not in body["capacities"][0]
    fhir = client.get(f"/fhir/HealthcareService/{INSPECTIONS}").get_json()
    assert not [e for e in fhir.get("extension", []) if e["url"] == EXT_CAPACITY]
    # Unknown is not no-capacity: a referral goes through again.
    assert refer(client, keys).status_code == 201


def test_no_capacity_refuses_a_referral_and_waitlist_says_so(app, client, keys):
    turn_on_referrals(client, keys["staff"])
    assert set_capacity(client, keys["staff"], status="no-capacity").status_code == 200
    refused = refer(client, keys)
    assert refused.status_code == 422
    assert "no capacity" in refused.get_json()["message"]
    assert "Zephyrine" not in refused.get_data(as_text=True)

    assert set_capacity(client, keys["staff"], status="waitlist").status_code == 200
    accepted = refer(client, keys)
    assert accepted.status_code == 201
    assert accepted.get_json()["service_capacity"] == "waitlist"
    assert "waitlist" in accepted.get_json()["message"]

    assert set_capacity(client, keys["staff"], status="capacity").status_code == 200
    plain = refer(client, keys)
    assert plain.status_code == 201 and "service_capacity" not in plain.get_json()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"status": "full"}, "status"),
        ({"status": "capacity", "available": 5, "maximum": 2, "unit": "families"}, "available"),
        ({"status": "capacity", "available": 5}, "unit"),
        ({"status": "capacity", "available": -1, "unit": "families"}, "available"),
        ({}, "status"),
    ],
)
@one_engine
def test_a_bad_capacity_is_a_422_and_changes_nothing(client, keys, body, field):
    before = read(client)
    response = set_capacity(client, keys["staff"], **body)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert field in errors.get("json", errors)
    assert read(client) == before


def test_capacity_needs_the_programs_key_and_if_match(client, keys):
    _, etag = read(client, HMG_CT)
    other = client.put(
        f"/services/{HMG_CT}/capacity", json={"status": "capacity"}, headers=auth(keys["staff"], **{"If-Match": etag})
    )
    assert other.status_code == 403
    missing = client.put(f"/services/{INSPECTIONS}/capacity", json={"status": "capacity"}, headers=auth(keys["staff"]))
    assert missing.status_code == 428
    stale = client.put(
        f"/services/{INSPECTIONS}/capacity",
        json={"status": "capacity"},
        headers=auth(keys["staff"], **{"If-Match": '"0000"'}),
    )
    assert stale.status_code == 412
