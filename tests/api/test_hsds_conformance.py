"""Every list and every record the directory serves validates against HSDS 3.0."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.extensions import db
from core import curation
from schemas.inputs import ServiceIn
from tests.hsds import errors, page_validator, program_validator, validator

# list URL -> (schema of each item, schema of each record fetched by id, id URL)
ENDPOINTS = {
    "/services": ("service_list", "service", "/services/{id}"),
    "/services?full=true": ("service", None, None),
    "/organizations": ("organization_list", "organization", "/organizations/{id}"),
    "/organizations?full=true": ("organization", None, None),
    "/organizations?full_service=true": ("organization", None, None),
    "/service_at_locations": ("service_at_location_list", "service_at_location", "/service_at_locations/{id}"),
    "/service_at_locations?full=true": ("service_at_location", None, None),
    "/taxonomies": ("taxonomy", "taxonomy", "/taxonomies/{id}"),
    "/taxonomy_terms": ("taxonomy_term", "taxonomy_term", "/taxonomy_terms/{id}"),
}


@pytest.fixture
def client(app):
    """The seeded directory, plus one service offered at the main campus.

    The hospital's pages place no service at an address, so the seed has no service at a
    location; this test data gives the service-at-location endpoints something to serve.
    """
    seed = Path(__file__).resolve().parents[2] / "seed_data"
    service = json.loads((seed / "services.json").read_text())["services"][0]
    campus = json.loads((seed / "organizations.json").read_text())["organizations"][0]["locations"][0]
    with app.app_context():
        curation.save_service(db.session, ServiceIn().load({**service, "location_ids": [campus["id"]]}))
        db.session.commit()
    return app.test_client()


def walk(client, url: str):
    page = 1
    while True:
        response = client.get(f"{url}{'&' if '?' in url else '?'}page={page}&per_page=4")
        assert response.status_code == 200, url
        body = response.get_json()
        yield body
        if body["last_page"]:
            return
        page += 1


@pytest.mark.parametrize("url", list(ENDPOINTS))
def test_every_page_item_and_record_validates(client, url):
    item_schema, record_schema, record_url = ENDPOINTS[url]
    seen = 0
    for body in walk(client, url):
        assert not errors(page_validator(), body)
        for item in body["contents"]:
            assert not errors(validator(item_schema), item), item.get("name")
            seen += 1
            if record_url:
                record = client.get(record_url.format(id=item["id"])).get_json()
                assert not errors(validator(record_schema), record), item.get("name")
    assert seen > 0, f"{url} listed nothing to validate"


def test_organization_with_full_services_validates(client):
    for org in client.get("/organizations").get_json()["contents"]:
        body = client.get(f"/organizations/{org['id']}?full_service=true").get_json()
        assert not errors(validator("organization"), body)
        assert all("referral_contact_points" in s for s in body.get("services", []))


def test_programs_validate_as_hsds_programs(client):
    for body in walk(client, "/programs"):
        assert not errors(page_validator(), body)
        for program in body["contents"]:
            assert not errors(program_validator(), program)
            for service in program["services"]:
                assert not errors(validator("service_list"), service)


def test_validation_is_real(client):
    """The validators do reject what HSDS forbids (so the tests above can fail)."""
    record = client.get("/services?full=true&per_page=1").get_json()["contents"][0]
    assert errors(validator("service"), {**record, "id": "not-a-uuid"})
    assert errors(validator("service"), {**record, "status": "open"})
    assert errors(validator("service"), {k: v for k, v in record.items() if k != "name"})
    assert errors(validator("service"), {**record, "email": "not an address"})
    assert errors(validator("service"), {**record, "last_modified": None})
