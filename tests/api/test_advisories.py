"""Crisis guidance before results: a search whose words signal an emergency answers, in its
list envelope, who to call now (seed_data/advisories.json), in English or in Spanish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.advisories import advisories_for

ROOT = Path(__file__).resolve().parents[2]
DATA = json.loads((ROOT / "seed_data" / "advisories.json").read_text(encoding="utf-8"))


@pytest.fixture
def client(reader):
    """Every test here only reads: they share one seeded database per engine."""
    return reader


def advisories(client, query: str, url: str = "/services", **params) -> list[dict]:
    response = client.get(url, query_string={"search": query, **params})
    assert response.status_code == 200, response.get_json()
    return response.get_json().get("advisories", [])


def phones(client, query: str, **params) -> set[str]:
    return {a["phone"] for a in advisories(client, query, **params)}


@pytest.mark.parametrize(
    "query, phone",
    [
        ("my son was shot", "911"),
        ("my teenager saw a friend get stabbed", "911"),
        ("my baby is not breathing", "911"),
        ("toddler choking on a grape", "911"),
        ("can't breathe", "911"),
        ("my toddler swallowed pills", "1-800-222-1222"),
        ("overdose", "1-800-222-1222"),
        ("my daughter talks about suicide", "988"),
        ("my son is cutting himself", "988"),
        ("I think my neighbor's child is neglected", "1-800-842-2288"),
        ("child abuse", "1-800-842-2288"),
        ("domestic violence", "888-774-2900"),
        ("my husband hits me", "888-774-2900"),
        ("a mi hijo le dispararon", "911"),
        ("mi bebé no respira", "911"),
        ("mi hijo se tragó pastillas, sobredosis", "1-800-222-1222"),
        ("mi hija habla de suicidio", "988"),
        ("maltrato infantil", "1-800-842-2288"),
        ("violencia doméstica", "888-774-2900"),
        ("mi esposo me pega", "888-774-2900"),
    ],
)
def test_crisis_words_raise_who_to_call_now(client, query, phone):
    assert phone in phones(client, query)


@pytest.mark.parametrize(
    "query",
    [
        "car seat safety",
        "fire safety class",
        "flu shot",
        "booster shot for my kid",
        "lead poisoning prevention",
        "asthma program for pediatricians",
        "gun violence victim services for youth",
        "substance abuse counseling",
        "asiento de carro",
        "envenenamiento por plomo",
    ],
)
def test_ordinary_searches_raise_nothing(client, query):
    body = client.get("/services", query_string={"search": query}).get_json()
    assert "advisories" not in body


def test_a_list_without_search_has_no_advisories(client):
    assert "advisories" not in client.get("/services").get_json()


def test_advisories_come_before_results_on_both_lists(client):
    for url in ("/services", "/service_at_locations"):
        body = client.get(url, query_string={"search": "my son was shot"}).get_json()
        assert [a["id"] for a in body["advisories"]] == ["emergency-911"]
    services = client.get("/services", query_string={"search": "my son was shot"}).get_json()["contents"]
    assert services[0]["name"] == "Hospital-based Violence Intervention Program"  # the results follow


def test_each_number_names_its_public_source(client):
    body = client.get(
        "/services", query_string={"search": "suicide overdose child abuse domestic violence shot"}
    ).get_json()
    assert {a["phone"] for a in body["advisories"]} == {
        "911",
        "988",
        "1-800-222-1222",
        "1-800-842-2288",
        "888-774-2900",
    }
    for advisory in body["advisories"]:
        assert advisory["sources"] and all(s["url"].startswith("http") and s["name"] for s in advisory["sources"])
    for item in DATA["advisories"]:
        # The number is written on the page named beside it (as the source's name quotes it).
        digits = "".join(ch for ch in item["phone"] if ch.isdigit())
        assert any(
            digits in "".join(ch for ch in s["name"] if ch.isdigit()) or item["phone"] == "911" for s in item["sources"]
        )


def test_the_language_follows_the_request_or_the_words(client):
    spanish = advisories(client, "a mi hijo le dispararon")
    assert spanish[0]["language"] == "es" and "llame al 911" in spanish[0]["text"]
    english = advisories(client, "a mi hijo le dispararon", lang="en")
    assert english[0]["language"] == "en" and "call 911" in english[0]["text"]
    asked = client.get(
        "/services", query_string={"search": "my son was shot"}, headers={"Accept-Language": "es"}
    ).get_json()
    assert asked["advisories"][0]["language"] == "es"


def test_the_core_function_serves_a_web_page_too():
    assert [a["id"] for a in advisories_for("not breathing", "es")] == ["emergency-911"]
    assert advisories_for("car seat safety") == []
    assert advisories_for("") == []
