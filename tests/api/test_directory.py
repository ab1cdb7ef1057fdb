"""The seeded directory as a front-end site or a care coordinator sees it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import one_engine

SEED = Path(__file__).resolve().parents[2] / "seed_data"
PROGRAM_SLUGS = [
    "help-me-grow",
    "healthy-homes",
    "injury-prevention-center",
    "easy-breathing",
    "center-for-care-coordination",
    "north-hartford-ascend-pipeline",
    "medical-legal-partnership",
    "advocacy-network",
]


def seed(name: str, key: str) -> list[dict]:
    return json.loads((SEED / name).read_text())[key]


def all_pages(client, url: str) -> list[dict]:
    items, page = [], 1
    while True:
        body = client.get(f"{url}{'&' if '?' in url else '?'}page={page}&per_page=5").get_json()
        items += body["contents"]
        if body["last_page"]:
            return items
        page += 1


def names(body: dict) -> set[str]:
    return {item["name"] for item in body["contents"]}


def test_root_describes_the_api(reader):
    client = reader  # only reads: the module's shared database
    body = client.get("/").get_json()
    assert body["version"] == "3.0"
    assert body["openapi_url"].endswith("/openapi.json")
    assert client.get(body["openapi_url"].replace("http://localhost", "")).status_code == 200


@pytest.mark.parametrize("slug", PROGRAM_SLUGS)
def test_every_seeded_program_is_found_by_slug_and_id_with_its_services(reader, slug):
    client = reader  # only reads: the module's shared database
    program = client.get(f"/programs/{slug}").get_json()
    assert program["slug"] == slug
    assert client.get(f"/programs/{program['id']}").get_json()["name"] == program["name"]
    assert program["services"], "each program offers at least one service"
    for brief in program["services"]:
        service = client.get(f"/services/{brief['id']}").get_json()
        assert service["program"]["id"] == program["id"]
        # A contact point only where a page names one (Help Me Grow Connecticut's 211 line).
        assert bool(service.get("referral_contact_points")) == (service["name"] == "Help Me Grow Connecticut")
        assert service["accepts_referrals"] is False, "no page says a service takes electronic referrals"


def test_programs_list_names_every_program(reader):
    client = reader  # only reads: the module's shared database
    assert {p["slug"] for p in all_pages(client, "/programs")} == set(PROGRAM_SLUGS)


def test_services_list_holds_every_seeded_service(reader):
    client = reader  # only reads: the module's shared database
    listed = {s["id"] for s in all_pages(client, "/services")}
    assert listed == {s["id"] for s in seed("services.json", "services")}


def test_help_me_grow_connecticut_is_reached_through_211(reader):
    client = reader  # only reads: the module's shared database
    hmg = client.get("/programs/help-me-grow").get_json()
    ct = next(s for s in hmg["services"] if s["name"] == "Help Me Grow Connecticut")
    points = client.get(f"/referral-contact-points?service_id={ct['id']}").get_json()["contents"]
    assert {(p["channel"], p["value"], p["purpose"]) for p in points} == {("phone", "211", "referral")}
    assert {p["audience"] for p in points} == {"families", "health_care_providers"}
    assert all("Child Development Infoline" in p["instructions"] for p in points)
    assert client.get("/referral-contact-points").get_json()["total_items"] == 2, "no other page names one"


def test_advocacy_network_contact_is_the_director_of_government_relations(reader):
    client = reader  # only reads: the module's shared database
    program = client.get("/programs/advocacy-network").get_json()
    service = client.get(f"/services/{program['services'][0]['id']}").get_json()
    contact = service["contacts"][0]
    assert (contact["name"], contact["title"]) == ("Jane Baird", "director of government relations")
    assert "email" not in contact and not contact.get("phones"), (
        "the page gives no e-mail address and says email, not phone"
    )
    assert "email Jane Baird" in service["application_process"] and "860.837.5557" in service["application_process"]
    assert not service.get("phones") and not service.get("referral_contact_points")


def test_medical_center_address_and_phone(reader):
    client = reader  # only reads: the module's shared database
    orgs = client.get("/organizations?full=true").get_json()["contents"]
    ccmc = next(o for o in orgs if o["name"] == "Connecticut Children's Medical Center")
    address = ccmc["locations"][0]["addresses"][0]
    assert (address["address_1"], address["city"], address["state_province"]) == (
        "282 Washington Street",
        "Hartford",
        "CT",
    )
    assert [p["number"] for p in ccmc["phones"]] == ["860.545.9000"]
    office = next(o for o in orgs if o["name"] == "Connecticut Children's Office for Community Child Health")
    assert office["parent_organization_id"] == ccmc["id"]
    assert "alternate_name" not in office, "no page calls it OCCH"
    assert "just a few of the extensive programs" in office["description"]


def test_contact_point_filters_combine_and_repeat(reader):
    client = reader  # only reads: the module's shared database
    families_phone = client.get("/referral-contact-points?audience=families&channel=phone").get_json()
    assert families_phone["total_items"] > 0
    assert all(p["audience"] == "families" and p["channel"] == "phone" for p in families_phone["contents"])
    both = client.get(
        "/referral-contact-points?audience=families&audience=health_care_providers&per_page=100"
    ).get_json()
    only_families = client.get("/referral-contact-points?audience=families&per_page=100").get_json()
    assert both["total_items"] > only_families["total_items"]
    hmg = client.get("/programs/help-me-grow").get_json()
    by_program = client.get(f"/referral-contact-points?program_id={hmg['id']}&purpose=referral").get_json()
    assert {p["value"] for p in by_program["contents"]} == {"211"}
    assert client.get("/referral-contact-points?channel=pigeon").status_code == 422


def test_filter_by_program_and_organization(reader):
    client = reader  # only reads: the module's shared database
    homes = client.get("/programs/healthy-homes").get_json()
    body = client.get(f"/services?program_id={homes['id']}").get_json()
    assert body["total_items"] == 5
    assert all(s["program_id"] == homes["id"] for s in body["contents"])
    ipc = client.get("/programs/injury-prevention-center").get_json()
    either = client.get(f"/services?program_id={homes['id']}&program_id={ipc['id']}").get_json()
    assert either["total_items"] == 5 + len(ipc["services"])
    ccmc = homes["organization"]["parent_organization_id"]
    assert ccmc, "OCCH has a parent organization"
    # AND across parameters: Healthy Homes belongs to OCCH, not directly to the medical center.
    assert client.get(f"/services?program_id={homes['id']}&organization_id={ccmc}").get_json()["total_items"] == 0


def test_category_filter_includes_the_terms_below(reader):
    client = reader  # only reads: the module's shared database
    terms = all_pages(client, "/taxonomy_terms")
    by_code = {t["code"]: t for t in terms}
    housing = by_code["occh-healthy-housing"]
    children = client.get(f"/taxonomy_terms?parent_id={housing['id']}&per_page=100").get_json()["contents"]
    assert {t["code"] for t in children} >= {"occh-lead-poisoning-prevention", "occh-weatherization-referral"}
    under_housing = names(client.get(f"/services?taxonomy_term_id={housing['id']}&per_page=100").get_json())
    weatherization = names(
        client.get(f"/services?taxonomy_term_id={by_code['occh-weatherization-referral']['id']}").get_json()
    )
    assert weatherization and weatherization <= under_housing
    assert not any("Violence" in name for name in under_housing)


def test_taxonomy_filter_and_top_only(reader):
    client = reader  # only reads: the module's shared database
    taxonomy = client.get("/taxonomies").get_json()["contents"][0]
    assert client.get(f"/services?taxonomy_id={taxonomy['id']}&per_page=100").get_json()["total_items"] == len(
        seed("services.json", "services")
    )
    tops = client.get("/taxonomy_terms?top_only=true&per_page=100").get_json()["contents"]
    assert tops and all("parent_id" not in t for t in tops)
    term = client.get(f"/taxonomy_terms/{tops[0]['id']}").get_json()
    assert term["taxonomy_detail"]["id"] == taxonomy["id"]


def test_hl7_cross_walk_is_served_where_one_fits(reader):
    client = reader  # only reads: the module's shared database
    terms = {t["code"]: t for t in all_pages(client, "/taxonomy_terms")}
    asthma = terms["occh-asthma-management"]["hl7_service_type"]
    assert asthma["system"] == "http://terminology.hl7.org/CodeSystem/service-type"
    assert asthma["code"] and asthma["display"]
    assert "hl7_service_type" not in terms["occh-early-identification"]


def test_modified_after(reader):
    client = reader  # only reads: the module's shared database
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.get("/services", query_string={"modified_after": past}).get_json()["total_items"] == 18
    assert client.get("/services", query_string={"modified_after": future}).get_json()["total_items"] == 0


def test_full_services_nest_their_records(reader):
    client = reader  # only reads: the module's shared database
    body = client.get("/services?full=true&per_page=100").get_json()
    assert all("attributes" in s for s in body["contents"])
    with_points = [s["name"] for s in body["contents"] if s.get("referral_contact_points")]
    assert with_points == ["Help Me Grow Connecticut"]
    brief = client.get("/services?per_page=100").get_json()
    assert not any("referral_contact_points" in s for s in brief["contents"])


def test_pagination_envelope(reader):
    client = reader  # only reads: the module's shared database
    first = client.get("/services?per_page=7").get_json()
    assert (first["total_items"], first["total_pages"], first["size"]) == (18, 3, 7)
    assert first["first_page"] and not first["last_page"] and not first["empty"]
    last = client.get("/services?per_page=7&page=3").get_json()
    assert last["last_page"] and last["size"] == 4
    beyond = client.get("/services?per_page=7&page=9").get_json()
    assert beyond["empty"] and beyond["contents"] == []
    ids = [s["id"] for p in (1, 2, 3) for s in client.get(f"/services?per_page=7&page={p}").get_json()["contents"]]
    assert len(set(ids)) == 18, "pages neither overlap nor skip"


@pytest.mark.parametrize(
    "url",
    [
        "/services?per_page=0",
        "/services?per_page=101",
        "/services?page=0",
        "/services?page=abc",
        "/services?organization_id=not-a-uuid",
        "/services?status=closed",
        "/services?modified_after=yesterday",
        "/services?colour=blue",
        "/organizations?full=maybe",
        "/taxonomy_terms?parent_id=1",
    ],
)
@one_engine
def test_bad_query_is_a_422_naming_the_parameter(client, url):
    response = client.get(url)
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation_error"
    parameter = url.split("?")[1].split("=")[0]
    assert parameter in body["errors"]["query"]


@pytest.mark.parametrize(
    "url",
    [
        "/services/00000000-0000-0000-0000-000000000000",
        "/services/not-a-uuid",
        "/organizations/123",
        "/programs/no-such-program",
        "/taxonomies/00000000-0000-0000-0000-000000000000",
        "/taxonomy_terms/00000000-0000-0000-0000-000000000000",
        "/service_at_locations/00000000-0000-0000-0000-000000000000",
        "/no/such/path",
    ],
)
def test_unknown_ids_and_paths_are_json_404s(reader, url):
    client = reader  # only reads: the module's shared database
    response = client.get(url)
    assert response.status_code == 404
    assert response.is_json and response.get_json()["error"] == "not_found"


def test_wrong_method_is_a_json_405(client):
    response = client.delete("/services")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_unexpected_failure_is_a_json_500_without_details(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    response = client.get("/boom")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert "secret detail" not in response.get_data(as_text=True)


def test_public_reads_allow_any_origin(reader):
    client = reader  # only reads: the module's shared database
    response = client.get("/services", headers={"Origin": "https://partner.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    preflight = client.options(
        "/programs", headers={"Origin": "https://partner.example", "Access-Control-Request-Method": "GET"}
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"


def test_requests_are_logged_as_json_without_query_values(client, caplog):
    caplog.set_level("INFO", logger="occh.requests")
    response = client.get("/services?search=my+son+was+shot", headers={"X-Request-ID": "req-42"})
    assert response.headers["X-Request-ID"] == "req-42"
    record = next(r for r in caplog.records if r.name == "occh.requests")
    assert record.fields == {
        "request_id": "req-42",
        "method": "GET",
        "route": "/services",
        "path": "/services",
        "status": 200,
        "duration_ms": record.fields["duration_ms"],
    }
    assert "shot" not in caplog.text
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert generated and generated != "bad id with spaces"
