"""Search in Spanish, as Hartford families type it: a Spanish vocabulary (seed_data/synonyms_es.csv),
Spanish stems and folded accents find what the English words find, on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SPANISH

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(reader):
    """Every test here only reads: they share one seeded database per engine."""
    return reader


def top3(client, query: str) -> tuple[list[str], list[str]]:
    response = client.get("/services", query_string={"search": query, "per_page": 3})
    assert response.status_code == 200, response.get_json()
    contents = response.get_json()["contents"]
    return [s["id"] for s in contents], [s["name"] for s in contents]


def test_the_spanish_suite_has_at_least_thirty_queries():
    assert len(SPANISH) >= 30
    assert all(case["expect_top3"] for case in SPANISH)


@pytest.mark.parametrize("case", SPANISH, ids=[q["query"] for q in SPANISH])
def test_spanish_relevance_suite(client, case):
    got, names = top3(client, case["query"])
    for expected in case["expect_top3"]:
        assert expected in got, f"{case['query']!r} gave {names}"
