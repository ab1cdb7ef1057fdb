"""The HSDS query parameters as a consumer uses them: `format=ndjson`, `minimal`, `search` on
every list, and filters that combine with AND and repeat with OR."""

from __future__ import annotations

import json

import pytest

from api.extensions import db
from core import directory
from core.paging import STREAM_BATCH
from models import Taxonomy
from tests.helpers import one_engine
from tests.hsds import offer_first_service_at_campus


@pytest.fixture
def campus_service(app):
    return offer_first_service_at_campus(app)


def ndjson(client, url: str) -> list[dict]:
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def ids(records) -> list[str]:
    return [record["id"] for record in records]


@pytest.mark.parametrize(
    "url",
    [
        "/services",
        "/services?full=true",
        "/services?minimal=true",
        "/organizations?full_service=true",
        "/taxonomies",
        "/taxonomy_terms",
        "/service_at_locations",
    ],
)
def test_ndjson_streams_every_record_of_the_list_one_a_line(client, campus_service, url):
    """Every record, not one page: the records of the JSON list, in its order, one a line,
    with no envelope."""
    listed = client.get(f"{url}{'&' if '?' in url else '?'}per_page=100").get_json()
    streamed = ndjson(client, f"{url}{'&' if '?' in url else '?'}format=ndjson")
    assert streamed == listed["contents"]
    assert len(streamed) == listed["total_items"] > 0
    assert not any("contents" in record or "total_items" in record for record in streamed)


def test_ndjson_is_not_cut_to_the_default_page(reader):
    """The default page is 20 terms; the stream gives them all."""
    client = reader  # only reads: the module's shared database
    total = client.get("/taxonomy_terms").get_json()["total_items"]
    assert total > 20
    assert len(ndjson(client, "/taxonomy_terms?format=ndjson")) == total


def test_ndjson_streams_past_a_batch_in_order_without_repeats(app, client):
    """A list longer than one database batch streams whole, in name order, each record once."""
    with app.app_context():
        db.session.add_all(
            Taxonomy(name=f"Imported taxonomy {n:04d}", description="A taxonomy of an imported directory.")
            for n in range(STREAM_BATCH * 2 + 1)
        )
        db.session.commit()
    streamed = ndjson(client, "/taxonomies?format=ndjson&search=imported")
    assert [record["name"] for record in streamed] == [
        f"Imported taxonomy {n:04d}" for n in range(STREAM_BATCH * 2 + 1)
    ]
    assert len(ndjson(client, "/taxonomies?format=ndjson")) == STREAM_BATCH * 2 + 2  # and the OCCH categories


@pytest.mark.parametrize("search", [None, "asthma lead"])
def test_streamed_services_in_small_batches_are_the_list(app, search):
    """Batches of any size give the same services in the same order as the list (by name, or
    by relevance)."""
    with app.app_context():
        query = directory.ServiceQuery(search=search)
        listed = directory.list_services(db.session, query, 1, 100, full=False).contents
        streamed = [record for batch in directory.stream_services(db.session, query, False, size=3) for record in batch]
        assert ids(streamed) == ids(listed) and len(listed) > 3


@pytest.mark.parametrize("params", ["page=2", "per_page=5", "facets=category", "format=json"])
@one_engine
def test_ndjson_refuses_what_does_not_apply_to_it(client, params):
    """Paging and facets belong to the JSON envelope; a second `format` is not a choice."""
    response = client.get(f"/services?format=ndjson&{params}")
    assert response.status_code == 422
    assert response.mimetype == "application/json"


def test_ndjson_applies_the_filters_and_search(reader):
    client = reader  # only reads: the module's shared database
    org = client.get("/organizations?search=Office+for+Community").get_json()["contents"][0]
    url = f"/services?organization_id={org['id']}&search=asthma"
    assert ids(ndjson(client, url + "&format=ndjson")) == ids(client.get(url).get_json()["contents"])


def test_minimal_gives_every_service_s_id_and_modified_date_in_one_page(reader):
    client = reader  # only reads: the module's shared database
    body = client.get("/services?minimal=true").get_json()
    full = {s["id"]: s for s in client.get("/services?full=true&per_page=100").get_json()["contents"]}
    assert body["total_pages"] == 1 and body["size"] == len(full) == body["total_items"]
    assert {record["id"]: record["last_modified"] for record in body["contents"]} == {
        service_id: service["last_modified"] for service_id, service in full.items()
    }
    assert all(set(record) == {"id", "last_modified"} for record in body["contents"])


def test_minimal_takes_the_filters(reader):
    client = reader  # only reads: the module's shared database
    term = client.get("/taxonomy_terms?search=asthma").get_json()["contents"][0]
    url = f"/services?taxonomy_term_id={term['id']}"
    assert ids(client.get(url + "&minimal=true").get_json()["contents"]) == ids(client.get(url).get_json()["contents"])


@pytest.mark.parametrize("params", ["minimal=true&full=true", "per_page=101", "minimal=true&per_page=10001"])
def test_minimal_refuses_what_does_not_fit(reader, params):
    client = reader  # only reads: the module's shared database
    assert client.get(f"/services?{params}").status_code == 422


def test_search_finds_taxonomies_and_terms_by_their_words(reader):
    client = reader  # only reads: the module's shared database
    assert client.get("/taxonomies?search=child+health+categories").get_json()["total_items"] == 1
    assert client.get("/taxonomies?search=zebra").get_json()["total_items"] == 0
    terms = client.get("/taxonomy_terms?search=housing").get_json()["contents"]
    assert terms and all("housing" in (t["name"] + t["code"] + t["description"]).lower() for t in terms)
    assert client.get("/taxonomy_terms?search=zebra").get_json()["empty"]


def test_search_finds_organizations_by_name_or_by_their_services(reader):
    client = reader  # only reads: the module's shared database
    both = client.get("/organizations").get_json()["contents"]
    by_name = client.get("/organizations?search=Office+for+Community").get_json()["contents"]
    assert [org["name"] for org in by_name] == ["Connecticut Children's Office for Community Child Health"]
    # Only the Office provides services, so a service word finds it and not the medical center.
    by_service = client.get("/organizations?search=asthama").get_json()["contents"]
    assert ids(by_service) == ids(by_name)
    assert len(both) == 2
    assert client.get("/organizations?search=zebra").get_json()["empty"]


def test_term_filters_and_across_parameters_and_or_across_repeats(reader):
    client = reader  # only reads: the module's shared database
    tops = client.get("/taxonomy_terms?top_only=true&per_page=100").get_json()["contents"]
    children = {
        top["id"]: ids(client.get(f"/taxonomy_terms?parent_id={top['id']}&per_page=100").get_json()["contents"])
        for top in tops
    }
    a, b = [top_id for top_id, kids in children.items() if kids][:2]
    either = client.get(f"/taxonomy_terms?parent_id={a}&parent_id={b}&per_page=100").get_json()["contents"]
    assert sorted(ids(either)) == sorted(children[a] + children[b])
    assert client.get(f"/taxonomy_terms?parent_id={a}&top_only=true").get_json()["empty"]


def test_service_at_location_filters_and_across_parameters(client, campus_service):
    org = campus_service["organization_id"]
    other = next(o["id"] for o in client.get("/organizations").get_json()["contents"] if o["id"] != org)
    assert client.get(f"/service_at_locations?organization_id={org}").get_json()["total_items"] == 1
    assert (
        client.get(f"/service_at_locations?organization_id={org}&organization_id={other}").get_json()["total_items"]
        == 1
    )
    assert client.get(f"/service_at_locations?organization_id={other}").get_json()["empty"]
    assert client.get(f"/service_at_locations?organization_id={org}&modified_after=2999-01-01T00:00:00Z").get_json()[
        "empty"
    ]


def test_service_at_locations_near_a_postcode(client, campus_service):
    """The campus is in Hartford (06106): near 06106 it is found, near Torrington (06790) not."""
    near = client.get("/service_at_locations?postcode=06106&proximity=3000").get_json()["contents"]
    assert [sal["service_id"] for sal in near] == [campus_service["id"]]
    assert near[0]["distance"] < 3000
    assert client.get("/service_at_locations?postcode=06790&proximity=3000").get_json()["empty"]
