"""Service lists count matches exactly up to EXACT_COUNT_LIMIT; past it the total is a lower
bound (`total_items_exact: false`) that always promises another page, and walking the pages
still gives every match once, ending on an exact last page."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from api.extensions import db
from models import Location, Service, ServiceAtLocation

LISTS = [
    "/services",  # the services table alone, in name order
    "/services?age=4",  # a row condition on the services table
    "/services?search=child",  # ranked and counted in the search index
    "/services?search=child&sort=name",  # index matches in name order
    "/services?search=child&age=4",  # index matches joined to a row condition
    "/service_at_locations",
    "/service_at_locations?search=child",
]


@pytest.fixture
def client(app, client):
    """The seeded directory, with each service also offered at a location of its own (the
    hospital's pages name no service-at-location records)."""
    with app.app_context():
        for service in db.session.scalars(select(Service)):
            location = Location(organization_id=service.organization_id, name=f"Site of {service.name}")
            db.session.add(ServiceAtLocation(service=service, location=location))
        db.session.commit()
    return client


def everything(client, url: str) -> list[str]:
    response = client.get(url + ("&" if "?" in url else "?") + "format=ndjson")
    assert response.status_code == 200
    return [json.loads(line)["id"] for line in response.get_data(as_text=True).splitlines()]


def page(client, url: str, number: int, per_page: int) -> dict:
    response = client.get(url + ("&" if "?" in url else "?") + f"page={number}&per_page={per_page}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("url", LISTS)
def test_totals_are_exact_below_the_limit(client, url):
    matches = everything(client, url)
    body = page(client, url, 1, 2)
    assert body["total_items"] == len(matches) and body["total_items_exact"] is True


@pytest.mark.parametrize("url", LISTS)
def test_past_the_limit_the_total_is_a_bound_and_the_pages_still_give_every_match(app, client, url):
    matches = everything(client, url)
    limit = 5
    assert len(matches) > limit + 4, "the seeded directory must hold more matches than the limit for this test"
    app.config["EXACT_COUNT_LIMIT"] = limit

    first = page(client, url, 1, 2)
    assert first["total_items"] == limit and first["total_items_exact"] is False
    assert first["total_pages"] == 3 and first["last_page"] is False

    seen, number = [], 1
    while True:
        body = page(client, url, number, 2)
        seen += [record["id"] for record in body["contents"]]
        if body["total_items_exact"]:
            assert body["total_items"] == len(matches)
        else:
            # A bound: at least one match after this page, so at least one page more.
            assert body["total_items"] >= number * 2 + 1 and body["total_pages"] > number
            assert body["last_page"] is False
        if body["last_page"]:
            break
        number += 1
        assert number <= len(matches), "the pages never ended"
    assert seen == matches
    assert body["total_items_exact"] is True and body["total_pages"] == number


def test_a_limit_of_zero_counts_every_match(app, client):
    matches = everything(client, "/services")
    app.config["EXACT_COUNT_LIMIT"] = 0
    body = page(client, "/services", 1, 2)
    assert body["total_items"] == len(matches) and body["total_items_exact"] is True


def test_other_lists_are_always_exact(app, client):
    app.config["EXACT_COUNT_LIMIT"] = 1
    body = client.get("/taxonomy_terms?per_page=2").get_json()
    assert body["total_items"] > 2 and body["total_items_exact"] is True
