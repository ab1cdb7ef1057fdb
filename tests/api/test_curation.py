"""Program staff keep their services true through the API: create, replace, patch, retire,
verify; If-Match; one validator with `flask hsds import`; history, search and ETags."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from api.extensions import db
from models import DirectoryVersion, RecordHistory, Service
from tests.helpers import HEALTHY_HOMES_PROGRAM, INSPECTIONS, ORGANIZATION, PATCH, auth, read, read_at, referral_body

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {s["name"]: s for s in json.loads((ROOT / "seed_data" / "services.json").read_text())["services"]}
HMG_CT = SERVICES["Help Me Grow Connecticut"]["id"]  # another program's


@pytest.fixture
def keys(curation_keys):
    return curation_keys


def patch(client, key, changes, etag, service_id=INSPECTIONS):
    return client.patch(
        f"/services/{service_id}", data=json.dumps(changes), content_type=PATCH, headers=auth(key, **{"If-Match": etag})
    )


def snapshot(app, service_id=INSPECTIONS):
    """What a family and a partner could notice: the stored record and the data version."""
    with app.app_context():
        client = app.test_client()
        body = client.get(f"/services/{service_id}").get_json()
        version = db.session.scalar(select(DirectoryVersion.tag))
        histories = db.session.scalar(select(func.count(RecordHistory.id)))
        db.session.remove()
        return body, version, histories


def new_record(**changes) -> dict:
    record = {
        "name": "Lead-safe cleaning kits",
        "description": "Cleaning kits and instructions for families whose home had lead hazards.",
        "organization_id": ORGANIZATION,
        "program_id": HEALTHY_HOMES_PROGRAM,
        "status": "active",
        "phones": [{"id": str(uuid.uuid4()), "number": "860-555-0199"}],
        "languages": [{"id": str(uuid.uuid4()), "name": "Spanish", "code": "es"}],
    }
    record.update(changes)
    return record


# ----------------------------------------------------------------------------- the staff key


def test_staff_create_replace_patch_and_retire_their_programs_service(client, keys):
    created = client.post("/services", json=new_record(), headers=auth(keys["staff"]))
    assert created.status_code == 201, created.get_json()
    service_id = created.get_json()["id"]
    assert created.headers["Location"].endswith(f"/services/{service_id}")
    record, etag = read(client, service_id)
    assert record["name"] == "Lead-safe cleaning kits" and record["phones"][0]["number"] == "860-555-0199"
    assert etag == created.headers["ETag"]

    # PUT: the full record as GET gave it, changed; a list it no longer carries is emptied.
    record["name"] = "Lead-safe cleaning kits and vacuums"
    record["languages"] = []
    replaced = client.put(f"/services/{service_id}", json=record, headers=auth(keys["staff"], **{"If-Match": etag}))
    assert replaced.status_code == 200, replaced.get_json()
    record, etag2 = read(client, service_id)
    assert record["name"] == "Lead-safe cleaning kits and vacuums"
    assert not record.get("languages")
    assert etag2 != etag

    patched = patch(client, keys["staff"], {"alert": "Kits on back order until March."}, etag2, service_id)
    assert patched.status_code == 200, patched.get_json()
    record, etag3 = read(client, service_id)
    assert record["alert"] == "Kits on back order until March." and record["name"].endswith("vacuums")

    retired = client.delete(f"/services/{service_id}", headers=auth(keys["staff"], **{"If-Match": etag3}))
    assert retired.status_code == 200
    assert read(client, service_id)[0]["status"] == "inactive"
    listed = client.get("/services", query_string={"program_id": HEALTHY_HOMES_PROGRAM, "per_page": 100}).get_json()
    assert service_id not in {s["id"] for s in listed["contents"]}


def test_another_programs_service_is_refused_and_unchanged(app, client, keys):
    before = snapshot(app, HMG_CT)
    _, etag = read(client, HMG_CT)
    assert patch(client, keys["staff"], {"name": "Taken over"}, etag, HMG_CT).status_code == 403
    assert (
        client.put(
            f"/services/{HMG_CT}", json={"name": "x"}, headers=auth(keys["staff"], **{"If-Match": etag})
        ).status_code
        == 403
    )
    assert client.delete(f"/services/{HMG_CT}", headers=auth(keys["staff"], **{"If-Match": etag})).status_code == 403
    assert (
        client.post(
            f"/services/{HMG_CT}/verify", json={}, headers=auth(keys["staff"], **{"If-Match": etag})
        ).status_code
        == 403
    )
    other = new_record(
        program_id=SERVICES["Help Me Grow Connecticut"]["program_id"],
        organization_id=SERVICES["Help Me Grow Connecticut"]["organization_id"],
    )
    assert client.post("/services", json=other, headers=auth(keys["staff"])).status_code == 403
    # Moving one's own service into another program is refused too.
    _, own = read(client)
    moved = patch(client, keys["staff"], {"program_id": SERVICES["Help Me Grow Connecticut"]["program_id"]}, own)
    assert moved.status_code == 403
    assert snapshot(app, HMG_CT) == before
    assert (
        client.patch(
            f"/services/{uuid.uuid4()}",
            data="{}",
            content_type=PATCH,
            headers=auth(keys["staff"], **{"If-Match": etag}),
        ).status_code
        == 404
    )


def test_an_admin_key_edits_any_service(client, keys):
    _, etag = read(client, HMG_CT)
    assert patch(client, keys["admin"], {"alert": "Phone lines closed on holidays."}, etag, HMG_CT).status_code == 200
    assert read(client, HMG_CT)[0]["alert"] == "Phone lines closed on holidays."


@pytest.mark.parametrize("who", ["partner", None])
def test_writes_need_a_directory_key(client, keys, who):
    _, etag = read(client)
    headers = auth(keys[who], **{"If-Match": etag}) if who else {"If-Match": etag}
    response = client.patch(f"/services/{INSPECTIONS}", data="{}", content_type=PATCH, headers=headers)
    assert response.status_code == (403 if who else 401)


# ----------------------------------------------------------------------------- concurrency


def test_a_write_without_if_match_is_428_and_a_stale_one_412(app, client, keys):
    _, etag = read(client)
    before = snapshot(app)
    response = client.patch(
        f"/services/{INSPECTIONS}", data='{"alert": "x"}', content_type=PATCH, headers=auth(keys["staff"])
    )
    assert response.status_code == 428
    assert "If-Match" in response.get_json()["message"]
    assert snapshot(app) == before
    assert patch(client, keys["staff"], {"alert": "First."}, etag).status_code == 200
    stale = patch(client, keys["staff"], {"alert": "Second, from an old read."}, etag)
    assert stale.status_code == 412
    assert read(client)[0]["alert"] == "First."


def test_patch_needs_the_merge_patch_content_type(client, keys):
    _, etag = read(client)
    response = client.patch(
        f"/services/{INSPECTIONS}", json={"alert": "x"}, headers=auth(keys["staff"], **{"If-Match": etag})
    )
    assert response.status_code == 415


# ----------------------------------------------------------------------------- one validator


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"status": "sleeping"}, "status"),
        ({"email": "not an address"}, "email"),
        ({"minimum_age": 12, "maximum_age": 3}, "maximum_age"),
        ({"name": None}, "name"),
        ({"phones": [{"id": "not-a-uuid", "number": "860-555-0100"}]}, "phones[0].id"),
        ({"organization_id": str(uuid.uuid4())}, "organization_id"),
    ],
)
def test_a_bad_record_is_a_422_naming_the_field_and_changes_nothing(app, client, keys, changes, field):
    _, etag = read(client)
    before = snapshot(app)
    response = patch(client, keys["staff"], changes, etag)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert snapshot(app) == before


def test_the_import_refuses_what_the_api_refuses(app, runner, tmp_path):
    """`flask hsds import` and the write routes are the same rules: the same bad record fails both."""
    record = copy.deepcopy(
        {k: v for k, v in SERVICES["Home lead and safety hazard inspections"].items() if k != "sources"}
    )
    record["status"] = "sleeping"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([record]))
    result = runner.invoke(args=["hsds", "import", str(path)])
    assert result.exit_code != 0
    assert "field status" in result.output


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "name",
        "status",
        "email",
        "url",
        "minimum_age",
        "maximum_age",
        "organization_id",
        "program_id",
        "phones",
        "languages",
        "service_areas",
        "contacts",
        "accepts_referrals",
        "referral_contact_points",
        "schedules",
    ]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(FIELDS, JSON_VALUES, min_size=1, max_size=3))
def test_any_body_is_a_clear_answer_and_a_refusal_changes_nothing(app, keys, changes):
    client = app.test_client()
    _, etag = read(client)
    before = snapshot(app)
    response = patch(client, keys["staff"], changes, etag)
    assert response.status_code in (200, 403, 422), response.get_data(as_text=True)
    if response.status_code != 200:
        assert snapshot(app) == before
        assert response.get_json()["message"]
    else:
        # Put it back for the next example: the data as it was (a new version, the same fields).
        original = {k: v for k, v in before[0].items() if k not in ("last_modified",)}
        restored = client.put(
            f"/services/{INSPECTIONS}",
            json=original,
            headers=auth(keys["staff"], **{"If-Match": response.headers["ETag"]}),
        )
        assert restored.status_code == 200, restored.get_json()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=st.dictionaries(FIELDS, JSON_VALUES, max_size=4))
def test_any_new_record_is_created_whole_or_not_at_all(app, keys, record):
    client = app.test_client()
    with app.app_context():
        count = db.session.scalar(select(func.count(Service.id)))
        db.session.remove()
    response = client.post("/services", json=record, headers=auth(keys["staff"]))
    assert response.status_code in (201, 403, 422), response.get_data(as_text=True)
    with app.app_context():
        after = db.session.scalar(select(func.count(Service.id)))
        db.session.remove()
    assert after == count + (1 if response.status_code == 201 else 0)


# ----------------------------------------------------------------------------- effects of a write


def test_history_search_and_etags_reflect_each_write_at_once(client, keys):
    listed = client.get("/services", query_string={"search": "lead inspections"})
    list_etag = listed.headers["ETag"]
    assert client.get("/services", query_string={"search": "zanzibarite"}).get_json()["total_items"] == 0
    _, etag = read(client)
    assert client.get(f"/services/{INSPECTIONS}", headers={"If-None-Match": etag}).status_code == 304

    response = patch(client, keys["staff"], {"description": "Inspections for lead and zanzibarite hazards."}, etag)
    assert response.status_code == 200
    found = client.get("/services", query_string={"search": "zanzibarite"}).get_json()
    assert [s["id"] for s in found["contents"]] == [INSPECTIONS]
    assert (
        client.get(
            "/services", query_string={"search": "lead inspections"}, headers={"If-None-Match": list_etag}
        ).status_code
        == 200
    )
    assert client.get(f"/services/{INSPECTIONS}", headers={"If-None-Match": etag}).status_code == 200
    assert read(client)[1] == response.headers["ETag"]

    history = client.get(f"/services/{INSPECTIONS}/history", headers=auth(keys["staff"]))
    assert history.status_code == 200
    assert history.headers["Cache-Control"] == "no-store"
    entry = history.get_json()[0]
    assert entry["client_name"] == "Healthy Homes staff" and entry["action"] == "patch"
    change = next(c for c in entry["changes"] if c["field"] == "description")
    assert change["to"] == "Inspections for lead and zanzibarite hazards."
    assert change["from"] == SERVICES["Home lead and safety hazard inspections"]["description"]
    assert client.get(f"/services/{INSPECTIONS}/history").status_code == 401


def test_a_replace_with_the_same_record_changes_nothing(client, keys):
    record, etag = read(client)
    response = client.put(f"/services/{INSPECTIONS}", json=record, headers=auth(keys["staff"], **{"If-Match": etag}))
    assert response.status_code == 200
    assert response.headers["ETag"] == etag
    assert client.get(f"/services/{INSPECTIONS}/history", headers=auth(keys["staff"])).get_json() == []


def test_a_service_with_open_referrals_cannot_be_retired(app, client, keys):
    _, etag = read(client)
    assert patch(client, keys["staff"], {"accepts_referrals": True}, etag).status_code == 200
    referral = client.post(
        "/referrals",
        json=referral_body(INSPECTIONS),
        headers=auth(keys["partner"], **{"Idempotency-Key": str(uuid.uuid4())}),
    )
    assert referral.status_code == 201, referral.get_json()
    _, etag = read(client)
    response = client.delete(f"/services/{INSPECTIONS}", headers=auth(keys["staff"], **{"If-Match": etag}))
    assert response.status_code == 409
    assert "1 open referral" in response.get_json()["message"]
    assert read(client)[0]["status"] == "active"


# ----------------------------------------------------------------------------- verification


def test_verify_records_who_and_when_and_nothing_else(app, client, keys, runner):
    record, etag = read(client)
    assert "assured_date" not in record
    stale = client.get(
        "/services", query_string={"verified_before": date.today().isoformat(), "per_page": 100}
    ).get_json()
    assert INSPECTIONS in {s["id"] for s in stale["contents"]}

    response = client.post(
        f"/services/{INSPECTIONS}/verify",
        json={"note": "Called the program; all correct."},
        headers=auth(keys["staff"], **{"If-Match": etag}),
    )
    assert response.status_code == 200, response.get_json()
    after, _ = read(client)
    assert after["assured_date"] == date.today().isoformat()
    assert after["assurer_email"] == "hh-staff@example.org"
    assert {k: v for k, v in after.items() if k not in ("assured_date", "assurer_email")} == record

    listed = client.get("/services", query_string={"program_id": HEALTHY_HOMES_PROGRAM, "per_page": 100}).get_json()
    assert next(s for s in listed["contents"] if s["id"] == INSPECTIONS)["assured_date"] == date.today().isoformat()
    stale = client.get(
        "/services", query_string={"verified_before": date.today().isoformat(), "per_page": 100}
    ).get_json()
    assert INSPECTIONS not in {s["id"] for s in stale["contents"]}
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert INSPECTIONS in {
        s["id"]
        for s in client.get("/services", query_string={"verified_before": tomorrow, "per_page": 100}).get_json()[
            "contents"
        ]
    }

    entry = client.get(f"/services/{INSPECTIONS}/history", headers=auth(keys["staff"])).get_json()[0]
    assert entry["action"] == "verify" and entry["note"] == "Called the program; all correct."

    result = runner.invoke(args=["directory", "stale", "--days", "180"])
    assert result.exit_code == 0
    assert "Home lead and safety hazard inspections" not in result.output
    assert "Help Me Grow Connecticut" in result.output


def test_clients_create_takes_a_contact_email(runner):
    result = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "HH",
            "--scopes",
            "directory:write",
            "--program",
            "healthy-homes",
            "--email",
            "hh@example.org",
        ]
    )
    assert result.exit_code == 0, result.output
    bad = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "HH",
            "--scopes",
            "directory:write",
            "--program",
            "healthy-homes",
            "--email",
            "nobody",
        ]
    )
    assert bad.exit_code != 0 and "e-mail" in bad.output


# ----------------------------------------------------------------------------- other records


def test_an_admin_key_edits_organizations_programs_and_terms_and_a_staff_key_does_not(app, client, keys):
    terms = json.loads((ROOT / "seed_data" / "taxonomy.json").read_text())["taxonomy_terms"]
    term_id = terms[0]["id"]
    for path, change in (
        (f"/organizations/{ORGANIZATION}", {"alternate_name": "CT Children's"}),
        (f"/programs/{HEALTHY_HOMES_PROGRAM}", {"alternate_name": "Healthy Homes Program"}),
        (f"/taxonomy_terms/{term_id}", {"description": "A category of this directory."}),
    ):
        before, etag = read_at(client, path)
        refused = client.patch(
            path, data=json.dumps(change), content_type=PATCH, headers=auth(keys["staff"], **{"If-Match": etag})
        )
        assert refused.status_code == 403, path
        assert read_at(client, path) == (before, etag)
        assert (
            client.patch(path, data=json.dumps(change), content_type=PATCH, headers=auth(keys["admin"])).status_code
            == 428
        )
        done = client.patch(
            path, data=json.dumps(change), content_type=PATCH, headers=auth(keys["admin"], **{"If-Match": etag})
        )
        assert done.status_code == 200, (path, done.get_json())
        after, new_etag = read_at(client, path)
        assert {k: after[k] for k in change} == change and new_etag != etag
        stale = client.patch(
            path, data='{"alternate_name": "x"}', content_type=PATCH, headers=auth(keys["admin"], **{"If-Match": etag})
        )
        assert stale.status_code == 412
    # A program's new name is searchable at once, through its services.
    bad = client.patch(
        f"/programs/{HEALTHY_HOMES_PROGRAM}",
        data='{"name": null}',
        content_type=PATCH,
        headers=auth(keys["admin"], **{"If-Match": read_at(client, f"/programs/{HEALTHY_HOMES_PROGRAM}")[1]}),
    )
    assert bad.status_code == 422 and "name" in bad.get_json()["errors"]


def test_staff_add_a_place_to_their_service(client, keys):
    location_id = str(uuid.uuid4())
    body = {
        "service_id": INSPECTIONS,
        "location": {
            "id": location_id,
            "name": "Healthy Homes office",
            "location_type": "physical",
            "organization_id": ORGANIZATION,
        },
    }
    created = client.post("/service_at_locations", json=body, headers=auth(keys["staff"]))
    assert created.status_code == 201, created.get_json()
    sal_id = created.get_json()["id"]
    record, _ = read(client)
    assert [s["location_id"] for s in record["service_at_locations"]] == [location_id]
    assert client.get(f"/service_at_locations/{sal_id}").get_json()["location"]["name"] == "Healthy Homes office"
    other = {"service_id": HMG_CT, "location_id": location_id}
    assert client.post("/service_at_locations", json=other, headers=auth(keys["staff"])).status_code == 403
