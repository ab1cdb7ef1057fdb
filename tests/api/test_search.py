"""Search as a care coordinator uses it: ranked, forgiving, filtered, near me.

Every test runs on SQLite (FTS5) and on PostgreSQL (tsvector, pg_trgm).
"""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.extensions import db
from core import curation, geo
from schemas.inputs import ServiceIn
from tests.helpers import OCCH, QUERIES, SERVICES, one_engine

ROOT = Path(__file__).resolve().parents[2]
CAMPUS = json.loads((ROOT / "seed_data" / "organizations.json").read_text())["organizations"][0]["locations"][0]["id"]


def top(client, query: str, n: int = 3, **params) -> list[str]:
    body = client.get("/services", query_string={"search": query, "per_page": n, **params}).get_json()
    return [s["name"] for s in body["contents"]]


def ids(client, url: str, **params) -> list[str]:
    response = client.get(url, query_string={"per_page": 100, **params})
    assert response.status_code == 200, response.get_json()
    return [s["id"] for s in response.get_json()["contents"]]


def save(app, **fields) -> str:
    """Add a service (test data) through the same code path as seeding."""
    record = {
        "id": str(uuid.uuid4()),
        "organization_id": OCCH,
        "name": "Test service",
        "status": "active",
        **fields,
    }
    with app.app_context():
        curation.save_service(db.session, ServiceIn().load(record))
        db.session.commit()
    return record["id"]


@pytest.mark.parametrize("case", QUERIES, ids=[q["query"] for q in QUERIES])
def test_relevance_suite(reader, case):
    client = reader  # only reads: the module's shared database
    body = client.get("/services", query_string={"search": case["query"], "per_page": 3}).get_json()
    got = [s["id"] for s in body["contents"]]
    names = [s["name"] for s in body["contents"]]
    for expected in case["expect_top3"]:
        assert expected in got, f"{case['query']!r} gave {names}"


def test_stemming_finds_other_forms_of_a_word(reader):
    client = reader  # only reads: the module's shared database
    assert "Home lead and safety hazard inspections" in top(client, "inspection")
    assert "Home lead and safety hazard inspections" in top(client, "inspected")
    assert "Referrals to weatherization programs" in top(client, "weatherize")


def test_a_match_in_the_name_outranks_one_in_the_description(app, client):
    save(app, name="Lullaby circle", description="A gathering of families.")
    save(app, name="Family gathering", description="Songs for babies, including a lullaby at the end of a long day.")
    assert top(client, "lullaby", 2) == ["Lullaby circle", "Family gathering"]


def test_synonyms_turn_family_words_into_directory_words(reader):
    client = reader  # only reads: the module's shared database
    assert top(client, "wheezing", 1) == ["Easy Breathing asthma management program"]
    assert top(client, "booster", 1) == ["Safe Kids Connecticut car seat clinics"]
    assert "Medical-Legal Partnership legal representation and advocacy" in top(client, "eviction")


@pytest.mark.parametrize(
    "typo, expected",
    [
        ("asthama", "Easy Breathing asthma management program"),
        ("developmental screning", "Help Me Grow Connecticut"),
        ("carseat", "Safe Kids Connecticut car seat clinics"),
        ("weatherisation", "Referrals to weatherization programs"),
        ("rodeoes", "Safe Kids Connecticut bike rodeos"),
    ],
)
def test_typos_are_forgiven(reader, typo, expected):
    client = reader  # only reads: the module's shared database
    assert expected in top(client, typo)


def test_a_change_is_searchable_as_soon_as_the_write_returns(app, client):
    assert top(client, "zumba") == []
    service_id = save(app, name="Zumba for toddlers")
    assert ids(client, "/services", search="zumba") == [service_id]
    save(app, id=service_id, name="Dance for toddlers")
    assert ids(client, "/services", search="zumba") == []
    assert ids(client, "/services", search="dance") == [service_id]


def test_a_typo_is_forgiven_as_soon_as_the_word_it_misses_is_written(app, client):
    # Each word's correction is kept until the directory changes: the first search finds no
    # word close to "zumbba"; once "Zumba" is written, the same search finds it.
    assert top(client, "zumbba") == []
    service_id = save(app, name="Zumba for toddlers")
    assert ids(client, "/services", search="zumbba") == [service_id]
    save(app, id=service_id, name="Dance for toddlers")
    assert ids(client, "/services", search="zumbba") == []


def test_program_and_service_at_location_search(app, client):
    programs = client.get("/programs", query_string={"search": "peeling paint"}).get_json()["contents"]
    assert programs[0]["slug"] == "healthy-homes"
    service = SERVICES["Care coordination"]
    save(app, **{k: v for k, v in service.items() if k not in ("sources", "location_ids")}, location_ids=[CAMPUS])
    sals = client.get("/service_at_locations", query_string={"search": "complex medical needs"}).get_json()
    assert sals["contents"][0]["service"]["name"] == "Care coordination"


HOSTILE = [
    '"',
    "'",
    'lead" OR "x',
    "NEAR(lead paint)",
    "lead*",
    "%",
    "_",
    "\\",
    "'; DROP TABLE service; --",
    "a & b | !c <-> d",
    "col:lead",
    "^lead",
    "(((",
    "🙂 🚗 car seat 🚗",
    "\u00a0lead\u00a0",
    "ﬁre",
    "AND OR NOT",
    "x" * 200,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_search_text_is_answered_not_crashed(reader, text):
    client = reader  # only reads: the module's shared database
    response = client.get("/services", query_string={"search": text})
    assert response.status_code == 200
    body = response.get_json()
    # A consistent page: the count is exact and the page holds what it says (at most 20).
    assert body["total_items_exact"] is True
    assert len(body["contents"]) == min(body["total_items"], 20)


def test_search_text_over_the_bound_is_a_422(reader):
    client = reader  # only reads: the module's shared database
    response = client.get("/services", query_string={"search": "x" * 201})
    assert response.status_code == 422
    assert "search" in response.get_json()["errors"]["query"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    search=st.text(max_size=220),
    extra=st.dictionaries(
        st.sampled_from(
            [
                "town",
                "postcode",
                "language",
                "category",
                "age",
                "age_months",
                "sort",
                "lat",
                "lon",
                "proximity",
                "facets",
            ]
        ),
        st.text(max_size=30),
        max_size=3,
    ),
)
def test_no_search_input_produces_a_server_error(client, search, extra):
    for url in ("/services", "/service_at_locations", "/programs"):
        params = {"search": search, **(extra if url != "/programs" else {})}
        response = client.get(url, query_string=params)
        assert response.status_code in (200, 422), (url, params, response.get_data(as_text=True)[:300])
        assert response.is_json


# ----------------------------------------------------------------------------- filters


@pytest.fixture
def varied(app):
    """Test services with ages, languages, towns and places (the seed gives none of these)."""
    return {
        "infants": save(
            app,
            name="Infant massage",
            minimum_age=0,
            maximum_age=1,
            languages=[{"id": str(uuid.uuid4()), "code": "es", "name": "Spanish"}],
            service_areas=[{"id": str(uuid.uuid4()), "name": "New Britain", "towns": ["New Britain"]}],
        ),
        "teens": save(
            app,
            name="Teen drivers",
            minimum_age=15,
            maximum_age=19,
            languages=[{"id": str(uuid.uuid4()), "code": "en", "name": "English"}],
            service_areas=[{"id": str(uuid.uuid4()), "name": "Hartford", "towns": ["Hartford"]}],
        ),
        "any_age": save(
            app,
            name="Family literacy nights",
            languages=[{"id": str(uuid.uuid4()), "code": "es"}, {"id": str(uuid.uuid4()), "code": "pt"}],
            service_areas=[
                {"id": str(uuid.uuid4()), "name": "Hartford and New Britain", "towns": ["Hartford", "New Britain"]}
            ],
        ),
    }


def test_age_filter_in_years_and_months(client, varied):
    six_months = set(ids(client, "/services", age_months=6))
    assert varied["infants"] in six_months and varied["any_age"] in six_months
    assert varied["teens"] not in six_months
    assert set(ids(client, "/services", age=16)) >= {varied["teens"], varied["any_age"]}
    assert varied["infants"] not in ids(client, "/services", age=16)
    either = set(ids(client, "/services", age=[0.5, 16]))
    assert {varied["infants"], varied["teens"]} <= either


def test_town_and_postcode_cover_statewide_services(client, varied):
    hartford = set(ids(client, "/services", town="Hartford"))
    assert {varied["teens"], varied["any_age"]} <= hartford
    assert varied["infants"] not in hartford
    statewide = {s["id"] for s in SERVICES.values() if any(a.get("statewide") for a in s["service_areas"])}
    assert statewide <= hartford and statewide <= set(ids(client, "/services", town="Danbury"))
    assert ids(client, "/services", postcode="06106") == ids(client, "/services", town="hartford")
    outside = client.get("/services", query_string={"postcode": "90210"})
    assert outside.status_code == 422, (
        "a ZIP code outside Connecticut's table names nothing (tests/api/test_relevance_fixes.py)"
    )
    both = set(ids(client, "/services", town=["Hartford", "New Britain"]))
    assert varied["infants"] in both and varied["teens"] in both


def test_every_connecticut_town_resolves_and_keeps_every_service_that_serves_it(reader):
    """All 169 towns (municipalities), by name and by each of their ZIP codes: a town filter
    keeps every statewide service and every service that states no area."""
    client = reader  # only reads: the module's shared database
    with open(ROOT / "seed_data" / "ct_towns.csv", newline="", encoding="utf-8") as handle:
        towns = {row["town"]: row["zips"].split(";") for row in csv.DictReader(handle)}
    assert len(towns) == 169 and all(towns.values())
    assert {"Hartland", "North Canaan", "Canaan", "Vernon", "Killingly", "Union", "Lisbon"} <= set(towns)
    statewide = {s["id"] for s in SERVICES.values() if any(a.get("statewide") for a in s["service_areas"])}
    unstated = {
        s["id"] for s in SERVICES.values() if not any(a.get("statewide") or a.get("towns") for a in s["service_areas"])
    }
    assert len(statewide) == 6 and len(unstated) == 11
    promise_zone = SERVICES["North Hartford Ascend Pipeline cradle to career pipeline"]["id"]
    for town, zips in towns.items():
        assert geo.town_place(town).name == town
        assert all(town in geo.zip_towns(code) for code in zips), town
        found = set(ids(client, "/services", town=town))
        assert statewide | unstated <= found, town
        assert (promise_zone in found) == (town == "Hartford"), town
    assert geo.zip_towns("06018") == ("North Canaan",), "the post office named Canaan is in North Canaan"
    assert geo.zip_towns("06031") == ("Canaan",)
    assert set(geo.zip_towns("06351")) == {"Griswold", "Lisbon"}
    assert set(ids(client, "/services", postcode="06066")) == set(ids(client, "/services", town="Vernon"))


def test_one_coverage_rule_for_town_postcode_and_age(app, client):
    """A filter on town, ZIP code or age drops only a service whose stated coverage leaves the
    value out; a service that states none is kept. A place outside Connecticut is covered only
    by a service that names it."""
    silent = save(app, name="Story time")
    bristol = save(
        app,
        name="Bristol swim lessons",
        minimum_age=4,
        maximum_age=12,
        service_areas=[{"id": str(uuid.uuid4()), "name": "Bristol", "towns": ["Bristol"]}],
    )
    assert {silent, bristol} <= set(ids(client, "/services", town="Bristol", age=6))
    assert {silent, bristol} <= set(ids(client, "/services", postcode="06010", age=6))
    found = set(ids(client, "/services", town="Vernon", age=15))
    assert silent in found and bristol not in found
    assert bristol not in ids(client, "/services", town="Bristol", age=15)
    assert silent in ids(client, "/services", postcode="06066") and bristol not in ids(
        client, "/services", postcode="06066"
    )
    # A place outside Connecticut that no service names is a filter value that names nothing: a 422.
    assert client.get("/services", query_string={"town": "Springfield"}).status_code == 422
    assert client.get("/services", query_string={"postcode": "01103"}).status_code == 422
    # Language is what a service is offered in, not whom it covers: only a stated one matches.
    assert silent not in ids(client, "/services", language="es")
    facets = client.get("/services", query_string={"facets": "town"}).get_json()["facets"]["town"]
    assert {"value": "Bristol", "count": 6 + 11 + 2} in facets  # statewide, seeded silent, and the two above


def test_language_filter_and_combinations(client, varied):
    spanish = set(ids(client, "/services", language="es"))
    assert spanish == {varied["infants"], varied["any_age"]}
    assert set(ids(client, "/services", language=["es", "en"])) == set(varied.values())
    assert ids(client, "/services", language="es", town="Hartford") == [varied["any_age"]]
    assert ids(client, "/services", language="es", town="Hartford", age=16) == [varied["any_age"]]
    assert ids(client, "/services", language="pt", search="literacy") == [varied["any_age"]]


def test_category_by_code_or_id_includes_descendants(reader):
    client = reader  # only reads: the module's shared database
    housing = set(ids(client, "/services", category="occh-healthy-housing"))
    lead = set(ids(client, "/services", category="occh-lead-poisoning-prevention"))
    assert lead and lead < housing
    term = client.get("/taxonomy_terms?per_page=100").get_json()["contents"]
    housing_id = next(t["id"] for t in term if t["code"] == "occh-healthy-housing")
    assert set(ids(client, "/services", category=housing_id)) == housing
    assert set(ids(client, "/services", taxonomy_term_id=housing_id)) == housing
    both = set(ids(client, "/services", category=["occh-healthy-housing", "occh-asthma-management"]))
    assert len(both) == len(housing) + 1


@pytest.mark.parametrize("path", ["/services", "/service_at_locations"])
@pytest.mark.parametrize("search", ["0", "lead"])
def test_an_unknown_category_is_a_422_with_search_words_too(reader, path, search):
    """A category that names nothing (tests/api/test_relevance_fixes.py), whatever the words."""
    response = reader.get(path, query_string={"category": "no-such-category", "search": search, "full": "true"})
    assert response.status_code == 422, response.get_json()
    assert "category" in response.get_json()["errors"]["query"]


def test_status_is_active_unless_asked(app, client):
    closed = save(app, name="Closed clinic", status="inactive")
    assert closed not in ids(client, "/services")
    assert ids(client, "/services", status="inactive") == [closed]
    assert closed in ids(client, "/services", status=["inactive", "active"])


# ----------------------------------------------------------------------------- near me


@pytest.fixture
def places(app):
    """Three test services with locations: Hartford (by coordinates), New Haven (by ZIP only)
    and Stamford (by coordinates)."""
    org = json.loads((ROOT / "seed_data" / "organizations.json").read_text())["organizations"][1]
    locations = [
        {
            "id": str(uuid.uuid4()),
            "name": "Hartford site",
            "location_type": "physical",
            "latitude": 41.7658,
            "longitude": -72.6734,
        },
        {
            "id": str(uuid.uuid4()),
            "name": "New Haven site",
            "location_type": "physical",
            "addresses": [
                {
                    "id": str(uuid.uuid4()),
                    "address_1": "1 Example Street",
                    "city": "New Haven",
                    "state_province": "CT",
                    "postal_code": "06510",
                    "country": "US",
                    "address_type": "physical",
                }
            ],
        },
        {
            "id": str(uuid.uuid4()),
            "name": "Stamford site",
            "location_type": "physical",
            "latitude": 41.0534,
            "longitude": -73.5387,
        },
    ]
    from schemas.inputs import OrganizationIn

    with app.app_context():
        curation.save_organization(db.session, OrganizationIn().load({**org, "locations": locations}))
        db.session.commit()
    return {
        name: save(app, name=f"Playgroup in {name}", location_ids=[loc["id"]])
        for name, loc in zip(("Hartford", "New Haven", "Stamford"), locations, strict=True)
    }


def test_sort_by_distance_returns_distances(client, places):
    body = client.get(
        "/services", query_string={"lat": 41.76, "lon": -72.68, "sort": "distance", "search": "playgroup"}
    ).get_json()
    names = [s["name"] for s in body["contents"]]
    assert names == ["Playgroup in Hartford", "Playgroup in New Haven", "Playgroup in Stamford"]
    distances = [s["distance"] for s in body["contents"]]
    assert distances == sorted(distances)
    assert distances[0] < 1_500 and 50_000 < distances[1] < 65_000 and 100_000 < distances[2] < 130_000


def test_proximity_keeps_only_nearby_services(client, places):
    near = client.get("/services", query_string={"lat": 41.76, "lon": -72.68, "proximity": 70_000}).get_json()
    assert {s["name"] for s in near["contents"]} == {"Playgroup in Hartford", "Playgroup in New Haven"}
    assert all("distance" in s for s in near["contents"])
    by_zip = client.get("/services", query_string={"postcode": "06902", "proximity": 10_000}).get_json()
    assert [s["name"] for s in by_zip["contents"]] == ["Playgroup in Stamford"]
    sals = client.get("/service_at_locations", query_string={"postcode": "06510", "proximity": 5_000}).get_json()
    assert [s["service"]["name"] for s in sals["contents"]] == ["Playgroup in New Haven"]


def test_services_without_a_location_come_last_when_sorted_by_distance(client, places):
    body = client.get(
        "/services", query_string={"lat": 41.77, "lon": -72.67, "sort": "distance", "per_page": 100}
    ).get_json()
    with_distance = [s for s in body["contents"] if "distance" in s]
    assert [s["name"] for s in with_distance][:1] == ["Playgroup in Hartford"]
    assert body["contents"][: len(with_distance)] == with_distance
    assert body["total_items"] == len(SERVICES) + 3


def test_postcode_with_sort_by_distance_keeps_its_coverage_filter(app, client, places):
    """Without `proximity` a postcode still means "services covering its town": the
    playgroups state no service area, so they stay (the coverage rule); a service whose area
    is New Haven alone does not."""
    elsewhere = save(
        app,
        name="New Haven reading hour",
        service_areas=[{"id": str(uuid.uuid4()), "name": "New Haven", "towns": ["New Haven"]}],
    )
    body = client.get("/services", query_string={"postcode": "06106", "sort": "distance", "per_page": 100}).get_json()
    names = {s["name"] for s in body["contents"]}
    assert {"Playgroup in Hartford", "Playgroup in New Haven"} <= names
    assert elsewhere not in {s["id"] for s in body["contents"]}


@pytest.mark.parametrize(
    "params, field",
    [
        ({"lat": 41.7}, "lon"),
        ({"sort": "distance"}, "sort"),
        ({"proximity": 1000}, "proximity"),
        ({"lat": 91, "lon": 0}, "lat"),
        ({"postcode": "6106"}, "postcode"),
        ({"postcode": "99999", "proximity": 1000}, "postcode"),
        ({"sort": "popularity"}, "sort"),
        ({"facets": "colour"}, "facets"),
    ],
)
@one_engine
def test_bad_near_me_parameters_are_422s(client, params, field):
    response = client.get("/services", query_string=params)
    assert response.status_code == 422
    errors = response.get_json()["errors"]["query"]
    assert field in errors or any(field in str(v) for v in errors.values())


# ----------------------------------------------------------------------------- facets & sort


def test_facets_count_with_every_other_filter(client, varied):
    body = client.get(
        "/services", query_string={"facets": ["language", "town", "program"], "language": "es"}
    ).get_json()
    facets = body["facets"]
    assert body["total_items"] == 2
    # The language facet ignores the language filter, so other choices stay visible.
    assert {f["value"]: f["count"] for f in facets["language"]} == {"es": 2, "en": 1, "pt": 1}
    # The town facet respects the language filter.
    towns = {f["value"]: f["count"] for f in facets["town"]}
    assert towns == {"New Britain": 2, "Hartford": 1}


def test_category_and_program_facets(reader):
    client = reader  # only reads: the module's shared database
    body = client.get("/services", query_string={"facets": "category,program".split(","), "search": "lead"}).get_json()
    categories = {f["value"]: f["count"] for f in body["facets"]["category"]}
    assert categories["occh-healthy-housing"] >= categories["occh-lead-poisoning-prevention"] > 0
    programs = {f["value"]: f["count"] for f in body["facets"]["program"]}
    # Every service belongs to one program: the program counts add up to the matches.
    assert programs["healthy-homes"] > 0 and sum(programs.values()) == body["total_items"]
    narrowed = client.get(
        "/services", query_string={"facets": "category", "category": "occh-injury-prevention"}
    ).get_json()
    assert {f["value"] for f in narrowed["facets"]["category"]} >= {"occh-healthy-housing", "occh-injury-prevention"}


def test_sort_by_name_and_modified(app, client):
    names = [s["name"] for s in client.get("/services?sort=name&per_page=100").get_json()["contents"]]
    assert names == sorted(names)
    newest = save(app, name="Aardvark reading hour")
    assert ids(client, "/services", sort="modified")[0] == newest
    ranked = client.get("/services", query_string={"search": "car seat", "sort": "name"}).get_json()["contents"]
    assert [s["name"] for s in ranked] == sorted(s["name"] for s in ranked)


@pytest.mark.parametrize("param", ["search", "town", "category"])
@one_engine
def test_control_characters_in_text_parameters_are_422s(client, param):
    response = client.get("/services", query_string={param: "lead\x00paint"})
    assert response.status_code == 422
    assert param in response.get_json()["errors"]["query"]


# ----------------------------------------------------------------------------- the index's filter tags


def test_filters_follow_a_write_at_once(app, client, varied):
    """Language, town, status and category filters are answered from tags in the search
    index: a write that changes them moves the service between lists as soon as it returns."""
    service_id = varied["teens"]
    assert service_id not in ids(client, "/services", language="pl")
    save(
        app,
        id=service_id,
        name="Teen drivers",
        minimum_age=15,
        maximum_age=19,
        languages=[{"id": str(uuid.uuid4()), "code": "pl", "name": "Polish"}],
        service_areas=[{"id": str(uuid.uuid4()), "name": "Meriden", "towns": ["Meriden"]}],
        categories=["occh-injury-prevention"],
    )
    assert service_id in ids(client, "/services", language="pl")
    assert service_id not in ids(client, "/services", language="en")
    assert service_id in ids(client, "/services", town="Meriden")
    assert service_id not in ids(client, "/services", town="Hartford")
    assert service_id in ids(client, "/services", category="occh-injury-prevention", search="drivers")
    save(app, id=service_id, name="Teen drivers", status="inactive")
    assert service_id not in ids(client, "/services", search="drivers")
    assert ids(client, "/services", status="inactive", search="drivers") == [service_id]


def test_moving_a_category_under_another_moves_its_services(app, client):
    """A category filter includes the categories below it, also after the tree changes."""
    with app.app_context():
        from sqlalchemy import select

        from models import TaxonomyTerm

        terms = {t.code: t for t in db.session.scalars(select(TaxonomyTerm))}
        asthma = terms["occh-asthma-management"]
        data = {
            "id": asthma.id,
            "taxonomy_id": asthma.taxonomy_id,
            "parent_id": terms["occh-healthy-housing"].id,
            "code": asthma.code,
            "name": asthma.name,
            "description": asthma.description,
        }
    asthma_services = set(ids(client, "/services", category="occh-asthma-management"))
    assert asthma_services and not asthma_services <= set(ids(client, "/services", category="occh-healthy-housing"))
    with app.app_context():
        curation.save_taxonomy_term(db.session, data)
        db.session.commit()
    assert asthma_services <= set(ids(client, "/services", category="occh-healthy-housing"))


def test_brief_list_records_are_the_schema_s_records(app, client):
    """Lists read brief records straight from rows; they are exactly what the documented
    ServiceListItemSchema makes of the same services."""
    from core import directory
    from schemas.hsds import ServiceListItemSchema

    with app.app_context():
        services = directory.list_services(
            db.session, directory.ServiceQuery(), page=1, per_page=100, full=True
        ).contents
        rows = directory.service_rows(db.session, [s.id for s in services])
        assert len(rows) == len(services) == len(SERVICES)
        for service in services:
            assert rows[service.id] == ServiceListItemSchema().dump(service)


def test_paging_by_relevance_shows_each_match_once(reader):
    """Many services tie on a common word; the pages still follow one order."""
    client = reader  # only reads: the module's shared database
    _pages_follow_one_order(client)


def _pages_follow_one_order(client) -> None:
    first = client.get("/services", query_string={"search": "children families", "per_page": 6}).get_json()
    walked = []
    for page in (1, 2, 3):
        body = client.get(
            "/services", query_string={"search": "children families", "per_page": 2, "page": page}
        ).get_json()
        assert body["total_items"] == first["total_items"] > 6
        walked += [s["id"] for s in body["contents"]]
    assert walked == [s["id"] for s in first["contents"]]


def _relevance_expectations_hold(client) -> None:
    for case in QUERIES:
        got = ids(client, "/services", search=case["query"], per_page=3)
        assert set(case["expect_top3"]) <= set(got), case["query"]


# The RUM ranking index is PostgreSQL's (an optional extension); SQLite has no such choice.
@pytest.mark.parametrize("engine", ["postgresql"])
def test_postgresql_ranks_in_the_rum_index_wherever_the_extension_is_installed(app, client):
    from sqlalchemy import text

    from core import search

    with app.app_context():
        available = db.session.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'rum'")).first()
        assert search.ranks_in_index(db.session) is (available is not None)
    _relevance_expectations_hold(client)
    _pages_follow_one_order(client)


@pytest.mark.parametrize("engine", ["postgresql"])
def test_postgresql_without_the_rum_extension_ranks_with_ts_rank(app, client):
    from sqlalchemy import text

    from core import search

    with app.app_context():
        db.session.execute(text("DROP EXTENSION IF EXISTS rum CASCADE"))
        db.session.commit()
        assert not search.ranks_in_index(db.session)
    _relevance_expectations_hold(client)
    _pages_follow_one_order(client)
