"""Relevance that does not mislead: expansions that sent families to the wrong place, generic
words that outranked content words, phrases that found nothing, searches that find nothing and
filter values that name nothing. On both engines."""

from __future__ import annotations

import pytest

from core.text import parse

HMG = "Help Me Grow Connecticut"
HVIP = "Hospital-based Violence Intervention Program"
ASCEND = "North Hartford Ascend Pipeline cradle to career pipeline"
RELOCATION = "Financial assistance and relocation for remediation"
WEATHER = "Referrals to weatherization programs"
BASIC = "Basic needs connections"
MLP = "Medical-Legal Partnership legal representation and advocacy"
CARE = "Care coordination"
FAIRS = "Safe Kids Connecticut safety fairs and educational materials"
INSPECTIONS = "Home lead and safety hazard inspections"
EDUCATION = "Home hazard education"
ADVOCACY = "Join the Connecticut Children's Advocacy Network"


@pytest.fixture
def client(reader):
    """Every test here only reads: they share one seeded database per engine."""
    return reader


def search(client, query: str, **params) -> dict:
    response = client.get("/services", query_string={"search": query, "per_page": 100, **params})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(client, query: str, n: int = 100) -> list[str]:
    return [s["name"] for s in search(client, query)["contents"]][:n]


# --- expansions that misled


@pytest.mark.parametrize("query", ["flu shot", "booster shot", "flu shots for kids"])
def test_a_vaccine_shot_is_not_a_shooting(client, query):
    assert HVIP not in names(client, query)


def test_a_shooting_still_finds_the_violence_program(client):
    assert names(client, "my son was shot", 1) == [HVIP]


def test_sexual_assault_is_not_sent_to_the_community_violence_program(client):
    assert HVIP not in names(client, "sexual assault")


def test_northeast_alone_is_not_widened_to_north_hartford(client):
    """ "northeast" is no longer a synonym of the North Hartford Promise Zone (a family in
    northeastern Connecticut is not in it); the pipeline is still found by its own program text,
    which names the Northeast neighborhood."""
    assert parse("northeast").expansions == []
    assert names(client, "northeast") == [ASCEND]
    assert names(client, "northeast hartford", 1) == [ASCEND]


def test_heat_rash_is_not_weatherization(client):
    assert WEATHER not in names(client, "heat rash")


@pytest.mark.parametrize("query", ["hotel", "place to stay"])
def test_a_place_to_stay_is_not_lead_relocation(client, query):
    assert RELOCATION not in names(client, query)


def test_moving_out_for_lead_work_still_finds_relocation(client):
    assert RELOCATION in names(client, "we have to move out while they fix the lead", 3)


def test_diapers_do_not_match_legal_and_school_programs_through_need(client):
    found = names(client, "need diapers")
    assert found[0] == BASIC
    assert MLP not in found and ASCEND not in found


# --- generic words weigh nothing beside content words


def test_help_does_not_outrank_the_words_that_matter(client):
    assert HMG not in names(client, "help paying for groceries", 1)
    assert names(client, "help paying for groceries", 1) == [BASIC]


@pytest.mark.parametrize("generic", ["help", "need", "services", "program", "my"])
def test_generic_words_change_nothing_beside_a_content_word(client, generic):
    assert names(client, f"{generic} wheezing") == names(client, "wheezing")


def test_a_generic_word_alone_is_still_searched(client):
    assert HMG in names(client, "help", 3)


# --- phrases that found nothing


@pytest.mark.parametrize(
    "query, expected",
    [
        ("ASQ", HMG),
        ("my baby is not babbling", HMG),
        ("tantrums", HMG),
        ("IEP meeting", CARE),
        ("504 plan", CARE),
        ("smoke alarm", FAIRS),
        ("carbon monoxide", INSPECTIONS),
        ("concussion", FAIRS),
        ("hot water burn", FAIRS),
        ("volunteer", ADVOCACY),
    ],
)
def test_phrases_families_use_find_the_service_whose_page_supports_them(client, query, expected):
    assert expected in names(client, query, 3)


def test_carbon_monoxide_also_finds_home_hazard_education(client):
    assert EDUCATION in names(client, "carbon monoxide", 3)


def test_rent_finds_nothing_and_says_what_to_try(client):
    """No service of the directory helps pay rent (Basic needs covers clothing, food and medical
    equipment; the legal partnership is found by "eviction"): the honest answer is no result,
    with categories to browse."""
    body = search(client, "help paying rent")
    assert body["contents"] == [] and body["total_items"] == 0
    assert body["suggestions"]["categories"]
    assert "did_you_mean" not in body["suggestions"]


# --- a search that finds nothing answers with suggestions


def test_a_misspelt_word_beyond_typo_tolerance_gets_did_you_mean(client):
    body = search(client, "fiers")  # two letters off "fairs": more than a five-letter word is forgiven
    assert body["contents"] == []
    assert body["suggestions"]["did_you_mean"] == "fairs"
    assert names(client, body["suggestions"]["did_you_mean"], 1) == [FAIRS]


def test_nothing_found_suggests_broader_categories(client):
    body = search(client, "xylophone lessons")
    codes = [c["code"] for c in body["suggestions"]["categories"]]
    assert codes and all(code.startswith("occh-") for code in codes)


def test_a_search_with_results_has_no_suggestions(client):
    assert "suggestions" not in search(client, "asthma")


# --- filter values that name nothing


@pytest.mark.parametrize(
    "params, parameter, suggestion",
    [
        ({"town": "Hartfrod"}, "town", "Hartford"),
        ({"town": "Nowhereville"}, "town", None),
        ({"category": "occh-nope"}, "category", None),
        ({"category": "occh-asthma-managment"}, "category", "occh-asthma-management"),
        ({"postcode": "99999"}, "postcode", None),
    ],
)
def test_an_unknown_filter_value_is_a_422_naming_the_parameter(client, params, parameter, suggestion):
    for url in ("/services", "/service_at_locations"):
        response = client.get(url, query_string=params)
        assert response.status_code == 422
        body = response.get_json()
        assert parameter in body["errors"]["query"]
        if suggestion:
            assert body["errors"]["did_you_mean"][parameter] == [suggestion]
            assert suggestion in body["errors"]["query"][parameter][0]
        else:
            assert "did_you_mean" not in body["errors"]


def test_known_filter_values_still_filter(client):
    assert client.get("/services", query_string={"town": "Hartford"}).status_code == 200
    assert client.get("/services", query_string={"town": "hartford", "postcode": "06106"}).status_code == 200
    assert client.get("/services", query_string={"category": "occh-asthma-management"}).get_json()["total_items"] == 1


def test_comma_lists_are_accepted_where_the_docs_say(client):
    together = client.get(
        "/services", query_string={"facets": "category,town", "category": "occh-asthma-management,occh-basic-needs"}
    )
    assert together.status_code == 200, together.get_json()
    body = together.get_json()
    assert set(body["facets"]) == {"category", "town"}
    assert body["total_items"] == 2
    repeated = client.get("/services?category=occh-asthma-management&category=occh-basic-needs").get_json()
    assert repeated["total_items"] == 2
