"""The rest of the write API: locations (read and written by program staff where only their
services are offered, or by an admin) and DELETE of organizations, programs, taxonomy terms,
services at locations and locations, with If-Match, history and ETags as for services."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from api.extensions import db
from models import DirectoryVersion, RecordHistory
from tests.helpers import HEALTHY_HOMES_PROGRAM, HMG_CT, INSPECTIONS, ORGANIZATION, PATCH, auth, read_at
from tests.hsds import HSDS, errors, page_validator


@pytest.fixture
def keys(curation_keys):
    return curation_keys


ROOT = Path(__file__).resolve().parents[2]
CAMPUS = json.loads((ROOT / "seed_data" / "organizations.json").read_text())["organizations"][0]["locations"][0]
# HSDS 3.0 `location`, as its compiled service_at_location schema nests it.
LOCATION = Draft202012Validator(
    json.loads((HSDS / "compiled" / "service_at_location.json").read_text())["properties"]["location"],
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)
TERMS = json.loads((ROOT / "seed_data" / "taxonomy.json").read_text())["taxonomy_terms"]


def new_location(**changes) -> dict:
    record = {
        "name": "Healthy Homes office",
        "location_type": "physical",
        "organization_id": ORGANIZATION,
        "addresses": [
            {
                "id": str(uuid.uuid4()),
                "address_1": "1 Example Way",
                "city": "Hartford",
                "state_province": "CT",
                "postal_code": "06106",
                "country": "US",
                "address_type": "physical",
            }
        ],
    }
    record.update(changes)
    return record


def patch_at(client, key, path, changes, etag):
    return client.patch(path, data=json.dumps(changes), content_type=PATCH, headers=auth(key, **{"If-Match": etag}))


def histories(app, record_id) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(
            select(RecordHistory.record_type, RecordHistory.action)
            .where(RecordHistory.record_id == uuid.UUID(str(record_id)))
            .order_by(RecordHistory.at)
        ).all()
        db.session.remove()
        return [tuple(row) for row in rows]


def snapshot(app, path):
    """What a reader could notice: the record at `path`, the data version, the history."""
    with app.app_context():
        response = app.test_client().get(path)
        version = db.session.scalar(select(DirectoryVersion.tag))
        count = db.session.scalar(select(func.count(RecordHistory.id)))
        db.session.remove()
        return response.status_code, response.get_json(), version, count


def offer(client, key, service_id, location_id) -> str:
    response = client.post(
        "/service_at_locations", json={"service_id": service_id, "location_id": location_id}, headers=auth(key)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


# ----------------------------------------------------------------------------- reading locations


def test_locations_are_listed_and_read_in_the_hsds_shape_and_cached(client):
    listed = client.get("/locations")
    assert listed.status_code == 200
    page = listed.get_json()
    assert page["total_items"] == 1 and page["page_number"] == 1 and page["total_pages"] == 1
    assert page["contents"][0]["id"] == CAMPUS["id"]
    assert page["contents"][0]["addresses"][0]["postal_code"] == "06106"
    assert errors(page_validator(), page) == []
    assert [errors(LOCATION, item) for item in page["contents"]] == [[]]
    assert listed.headers["Cache-Control"].startswith("public")
    assert client.get("/locations", headers={"If-None-Match": listed.headers["ETag"]}).status_code == 304
    assert client.get("/locations", query_string={"organization_id": str(uuid.uuid4())}).get_json()["contents"] == []
    assert client.get("/locations", query_string={"colour": "red"}).status_code == 422

    record, etag = read_at(client, f"/locations/{CAMPUS['id']}")
    assert record["name"] == CAMPUS["name"] and record["location_type"] == "physical"
    assert errors(LOCATION, record) == []
    assert client.get(f"/locations/{CAMPUS['id']}", headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"/locations/{uuid.uuid4()}").status_code == 404


# ----------------------------------------------------------------------------- writing locations


def test_staff_create_change_and_delete_a_place_of_their_own(app, client, keys):
    list_etag = client.get("/locations").headers["ETag"]
    created = client.post("/locations", json=new_location(), headers=auth(keys["staff"]))
    assert created.status_code == 201, created.get_json()
    location_id = created.get_json()["id"]
    path = f"/locations/{location_id}"
    assert created.headers["Location"].endswith(path)
    assert client.get("/locations", headers={"If-None-Match": list_etag}).status_code == 200
    record, etag = read_at(client, path)
    assert etag == created.headers["ETag"] and record["addresses"][0]["city"] == "Hartford"

    sal_id = offer(client, keys["staff"], INSPECTIONS, location_id)
    patched = patch_at(client, keys["staff"], path, {"transportation": "Bus 60 stops at the door."}, etag)
    assert patched.status_code == 200, patched.get_json()
    record, etag2 = read_at(client, path)
    assert record["transportation"] == "Bus 60 stops at the door." and etag2 != etag
    service = client.get(f"/services/{INSPECTIONS}").get_json()
    assert [s["location"]["transportation"] for s in service["service_at_locations"]] == ["Bus 60 stops at the door."]

    record["name"] = "Healthy Homes field office"
    replaced = client.put(path, json=record, headers=auth(keys["staff"], **{"If-Match": etag2}))
    assert replaced.status_code == 200, replaced.get_json()
    _, etag3 = read_at(client, path)

    # Still offered there: a 409 that says by what, and nothing changes.
    before = snapshot(app, path)
    refused = client.delete(path, headers=auth(keys["staff"], **{"If-Match": etag3}))
    assert refused.status_code == 409
    assert "1 services at locations" in refused.get_json()["message"]
    assert snapshot(app, path) == before

    _, sal_etag = read_at(client, f"/service_at_locations/{sal_id}")
    service_etag = client.get(f"/services/{INSPECTIONS}").headers["ETag"]
    gone = client.delete(f"/service_at_locations/{sal_id}", headers=auth(keys["staff"], **{"If-Match": sal_etag}))
    assert gone.status_code == 204
    assert client.get(f"/service_at_locations/{sal_id}").status_code == 404
    after = client.get(f"/services/{INSPECTIONS}")
    assert after.get_json().get("service_at_locations", []) == [] and after.headers["ETag"] != service_etag

    deleted = client.delete(path, headers=auth(keys["staff"], **{"If-Match": etag3}))
    assert deleted.status_code == 204
    assert client.get(path).status_code == 404
    assert location_id not in {item["id"] for item in client.get("/locations").get_json()["contents"]}
    assert histories(app, location_id) == [
        ("location", "create"),
        ("location", "patch"),
        ("location", "replace"),
        ("location", "delete"),
    ]
    assert histories(app, sal_id) == [("service_at_location", "create"), ("service_at_location", "delete")]


def test_a_write_key_cannot_change_a_place_where_another_programs_service_is_offered(app, client, keys):
    path = f"/locations/{CAMPUS['id']}"
    offer(client, keys["admin"], HMG_CT, CAMPUS["id"])
    offer(client, keys["staff"], INSPECTIONS, CAMPUS["id"])  # theirs is offered there too
    _, etag = read_at(client, path)
    before = snapshot(app, path)
    refused = patch_at(client, keys["staff"], path, {"name": "Renamed by Healthy Homes"}, etag)
    assert refused.status_code == 403
    assert "another program" in refused.get_json()["message"]
    assert client.put(path, json=before[1], headers=auth(keys["staff"], **{"If-Match": etag})).status_code == 403
    assert client.delete(path, headers=auth(keys["staff"], **{"If-Match": etag})).status_code == 403
    assert snapshot(app, path) == before
    partner = client.post("/locations", json=new_location(), headers=auth(keys["partner"]))
    assert partner.status_code == 403

    # Nor through a record that nests it: a service at location, or the service itself.
    nested = dict(before[1], name="Renamed through a nested record")
    sneaky = client.post(
        "/service_at_locations", json={"service_id": INSPECTIONS, "location": nested}, headers=auth(keys["staff"])
    )
    assert sneaky.status_code == 403 and "location" in sneaky.get_json()["errors"], sneaky.get_json()
    service, service_etag = read_at(client, f"/services/{INSPECTIONS}")
    service["service_at_locations"][0]["location"]["name"] = "Renamed through the service"
    sneaky = client.put(
        f"/services/{INSPECTIONS}", json=service, headers=auth(keys["staff"], **{"If-Match": service_etag})
    )
    assert sneaky.status_code == 403 and "location" in sneaky.get_json()["errors"], sneaky.get_json()
    assert snapshot(app, path) == before
    # The service's record as read, shared place and all, still goes back unchanged.
    service["service_at_locations"][0]["location"]["name"] = CAMPUS["name"]
    same = client.put(
        f"/services/{INSPECTIONS}", json=service, headers=auth(keys["staff"], **{"If-Match": service_etag})
    )
    assert same.status_code == 200, same.get_json()

    done = patch_at(client, keys["admin"], path, {"transportation": "Parking garage on Washington Street."}, etag)
    assert done.status_code == 200, done.get_json()
    assert histories(app, CAMPUS["id"]) == [("location", "patch")]


def test_location_writes_need_a_current_if_match(app, client, keys):
    path = f"/locations/{CAMPUS['id']}"
    record, etag = read_at(client, path)
    before = snapshot(app, path)
    assert client.patch(path, data='{"name": "x"}', content_type=PATCH, headers=auth(keys["admin"])).status_code == 428
    assert client.put(path, json=record, headers=auth(keys["admin"])).status_code == 428
    assert client.delete(path, headers=auth(keys["admin"])).status_code == 428
    assert snapshot(app, path) == before
    assert patch_at(client, keys["admin"], path, {"transportation": "First."}, etag).status_code == 200
    assert patch_at(client, keys["admin"], path, {"transportation": "From an old read."}, etag).status_code == 412
    assert client.delete(path, headers=auth(keys["admin"], **{"If-Match": etag})).status_code == 412
    assert read_at(client, path)[0]["transportation"] == "First."


def test_a_bad_location_is_a_422_naming_the_field_and_changes_nothing(app, client, keys):
    path = f"/locations/{CAMPUS['id']}"
    _, etag = read_at(client, path)
    before = snapshot(app, path)
    for changes, field in (({"location_type": None}, "location_type"), ({"latitude": "north"}, "latitude")):
        response = patch_at(client, keys["admin"], path, changes, etag)
        assert response.status_code == 422, (changes, response.get_json())
        assert any(field in name for name in response.get_json()["errors"]), response.get_json()
        assert snapshot(app, path) == before
    created = client.post("/locations", json=new_location(location_type="spaceship"), headers=auth(keys["staff"]))
    assert created.status_code == 422
    assert client.get("/locations").get_json()["total_items"] == 1


# ----------------------------------------------------------------------------- deleting other records


def new_records(client, admin_key) -> dict[str, str]:
    """An organization with a program, and a taxonomy term, none used by anything."""
    made = {}
    for kind, path, body in (
        ("organization", "/organizations", {"name": "Example Family Center", "description": "A test organization."}),
        (
            "taxonomy_term",
            "/taxonomy_terms",
            {
                "code": "test-term",
                "name": "Test term",
                "description": "A test term.",
                "taxonomy_id": TERMS[0]["taxonomy_id"],
            },
        ),
    ):
        response = client.post(path, json=body, headers=auth(admin_key))
        assert response.status_code == 201, response.get_json()
        made[kind] = response.get_json()["id"]
    response = client.post(
        "/programs",
        json={"organization_id": made["organization"], "name": "Example program", "description": "A test program."},
        headers=auth(admin_key),
    )
    assert response.status_code == 201, response.get_json()
    made["program"] = response.get_json()["id"]
    return made


def test_an_admin_deletes_what_nothing_references_and_a_referenced_record_is_a_409(app, client, keys):
    made = new_records(client, keys["admin"])
    used_term = next(term["id"] for term in TERMS if term.get("parent_id"))
    cases = (
        (f"/organizations/{ORGANIZATION}", "services"),
        (f"/programs/{HEALTHY_HOMES_PROGRAM}", "services"),
        (f"/organizations/{made['organization']}", "1 programs"),  # its program, until that goes
    )
    for path, named in cases:
        _, etag = read_at(client, path)
        before = snapshot(app, path)
        refused = client.delete(path, headers=auth(keys["admin"], **{"If-Match": etag}))
        assert refused.status_code == 409, path
        assert named in refused.get_json()["message"] and refused.get_json()["errors"]["referenced_by"]
        assert snapshot(app, path) == before
    term_path = f"/taxonomy_terms/{next(t['parent_id'] for t in TERMS if t.get('parent_id'))}"
    _, etag = read_at(client, term_path)
    assert client.delete(term_path, headers=auth(keys["admin"], **{"If-Match": etag})).status_code == 409
    assert used_term

    for kind, path in (
        ("program", f"/programs/{made['program']}"),
        ("organization", f"/organizations/{made['organization']}"),
        ("taxonomy_term", f"/taxonomy_terms/{made['taxonomy_term']}"),
    ):
        _, etag = read_at(client, path)
        assert client.delete(path, headers=auth(keys["staff"], **{"If-Match": etag})).status_code == 403
        assert client.delete(path, headers=auth(keys["admin"])).status_code == 428
        assert client.delete(path, headers=auth(keys["admin"], **{"If-Match": '"stale"'})).status_code == 412
        assert client.get(path).status_code == 200
        list_path = path.rsplit("/", 1)[0]
        list_etag = client.get(list_path).headers["ETag"]
        deleted = client.delete(path, headers=auth(keys["admin"], **{"If-Match": etag}))
        assert deleted.status_code == 204, (path, deleted.get_json())
        assert client.get(path).status_code == 404
        assert client.get(list_path, headers={"If-None-Match": list_etag}).status_code == 200
        assert histories(app, made[kind]) == [(kind, "create"), (kind, "delete")]
