"""`flask seed`: loads the hospital's facts, validates them, and is idempotent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from api.extensions import db
from models import Base

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seed_data"
PAGES = SEED / "sources"


def snapshot(app) -> dict:
    with app.app_context():
        return {
            table.name: sorted(map(repr, db.session.execute(select(table)).all()))
            for table in Base.metadata.sorted_tables
        }


def test_seed_twice_changes_nothing(app):
    before = snapshot(app)
    assert sum(map(len, before.values())) > 50
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed"])
        assert result.exit_code == 0, result.output
        assert "18 services" in result.output
    assert snapshot(app) == before, "a second seed changed rows or last_modified"


def test_seed_fills_an_empty_database(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    client = empty_app.test_client()
    assert client.get("/programs").get_json()["total_items"] == 8


def test_seed_rejects_invalid_records_and_writes_nothing(empty_app, tmp_path):
    for name in ("taxonomy.json", "organizations.json", "programs.json"):
        (tmp_path / name).write_text((SEED / name).read_text())
    services = json.loads((SEED / "services.json").read_text())
    services["services"][3]["status"] = "open all hours"
    services["services"][1]["referral_contact_points"][0]["channel"] = "carrier pigeon"
    (tmp_path / "services.json").write_text(json.dumps(services))
    result = empty_app.test_cli_runner().invoke(args=["seed", "--dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "status" in result.output and "channel" in result.output
    assert empty_app.test_client().get("/programs").get_json()["total_items"] == 0


def _all_values(node, key_filter):
    if isinstance(node, dict):
        for key, value in node.items():
            if key_filter(key) and isinstance(value, str):
                yield key, value
            yield from _all_values(value, key_filter)
    elif isinstance(node, list):
        for item in node:
            yield from _all_values(item, key_filter)


def _seed_records():
    return {
        name: json.loads((SEED / name).read_text()) for name in ("organizations.json", "programs.json", "services.json")
    }


def test_every_phone_and_contact_value_is_on_the_hospitals_pages():
    pages = " ".join(p.read_text() for p in PAGES.glob("*.txt"))
    checked = 0
    for records in _seed_records().values():
        for _, value in _all_values(records, lambda k: k in ("number", "value", "email", "url", "website")):
            assert value in pages, f"{value!r} is not on any source page"
            checked += 1
    assert checked == 4  # the main number, the 211 line, and 211 as two contact points


def unsourced_referral_facts(services: list[dict]) -> list[str]:
    """What a partner would rely on to send a referral and no page is cited for: each referral
    contact point must cite a page (`sources`) that carries its value, and `accepts_referrals:
    true` must cite one (`accepts_referrals_sources`)."""
    pages = {p.name: p.read_text() for p in PAGES.glob("*.txt")}
    problems = []
    for service in services:
        for point in service.get("referral_contact_points", []):
            cited = [pages[name] for name in point.get("sources", []) if name in pages]
            if not cited or not any(point["value"] in text for text in cited):
                problems.append(f"{service['name']}: contact point {point['value']!r} cites no page that gives it")
        if service.get("accepts_referrals") and not {*service.get("accepts_referrals_sources", [])} & set(pages):
            problems.append(f"{service['name']}: accepts_referrals cites no page")
    return problems


def test_every_referral_contact_point_and_accepts_referrals_cites_its_page():
    services = _seed_records()["services.json"]["services"]
    assert unsourced_referral_facts(services) == []
    # The check fails on what the seed once held: the main number as a program's line, and
    # referrals turned on with nothing to say so.
    invented = json.loads(json.dumps(services))
    invented[2]["referral_contact_points"] = [
        {
            "id": "c5cb8306-1528-5a48-8c79-7526e0aa9184",
            "channel": "phone",
            "value": "860.545.9000",
            "audience": "families",
            "purpose": "information",
        }
    ]
    invented[3]["accepts_referrals"] = True
    invented[4]["referral_contact_points"] = [
        {**invented[1]["referral_contact_points"][0], "sources": ["000_98145ad490c428d1.txt"]}
    ]
    assert len(unsourced_referral_facts(invented)) == 3


def test_no_service_takes_electronic_referrals_until_its_program_says_so():
    services = _seed_records()["services.json"]["services"]
    assert not any(service["accepts_referrals"] for service in services)
    assert sum(len(s["referral_contact_points"]) for s in services) == 2  # Help Me Grow Connecticut's 211 line
    main_number = "860.545.9000"
    assert not any(p["value"] == main_number for s in services for p in s["referral_contact_points"])


def test_the_seed_says_only_what_the_pages_say():
    records = _seed_records()
    services = {s["name"]: s for s in records["services.json"]["services"]}
    programs = {p["slug"]: p for p in records["programs.json"]["programs"]}
    taxonomy = json.loads((SEED / "taxonomy.json").read_text())
    text = json.dumps([records, taxonomy])
    # "OCCH" is on no page: only the internal category codes (`occh-...`) carry it.
    assert "OCCH" not in text and not re.search(r"occh(?!-[a-z])", text, re.IGNORECASE)
    # The Injury Prevention Center's mission ("among Connecticut residents") is no service area.
    ipc = [s for s in services.values() if s["program_id"] == programs["injury-prevention-center"]["id"]]
    assert len(ipc) == 4 and not any(s["service_areas"] for s in ipc)
    assert (
        "One of its signature programs is Safe Kids Connecticut" in programs["injury-prevention-center"]["description"]
    )
    assert "will partner" in programs["north-hartford-ascend-pipeline"]["description"]
    assert " partners with" not in text
    advocacy = services["Join the Connecticut Children's Advocacy Network"]
    assert "email Jane Baird" in advocacy["application_process"]
    assert not advocacy["phones"] and not advocacy["referral_contact_points"]
    assert [c["name"] for c in advocacy["contacts"]] == ["Jane Baird"] and "phones" not in advocacy["contacts"][0]
    names = {t["code"]: t["name"] for t in taxonomy["taxonomy_terms"]}
    assert not any("screening" in name.lower() for name in names.values())
    assert services["Help Me Grow Connecticut"]["categories"] == ["occh-early-identification"]


def test_what_the_pages_say_is_carried():
    records = _seed_records()
    services = {s["name"]: s for s in records["services.json"]["services"]}
    office = next(o for o in records["organizations.json"]["organizations"] if "Office for Community" in o["name"])
    assert "just a few of the extensive programs" in office["description"]
    names = {t["code"]: t["name"] for t in json.loads((SEED / "taxonomy.json").read_text())["taxonomy_terms"]}
    care = services["Care coordination"]["categories"]
    assert {"occh-complex-medical-needs", "occh-social-determinants", "occh-behavioral-health-connection"} <= set(care)
    assert {"occh-educational-connection", "occh-legal-connection", "occh-advocacy-connection"} <= set(care)
    safe_kids = services["Safe Kids Connecticut safety fairs and educational materials"]["categories"]
    focus = [
        "occh-drowning-prevention",
        "occh-window-fall-prevention",
        "occh-playground-sports-injury-prevention",
        "occh-fire-cooking-safety",
    ]
    assert set(focus) <= set(safe_kids)
    assert [names[code] for code in focus] == [
        "Drowning prevention",
        "Window fall prevention",
        "Playground and sports injury prevention",
        "Fire and cooking safety",
    ]


def test_every_record_names_an_existing_source_page():
    files = {p.name for p in PAGES.glob("*.txt")}
    for name, records in _seed_records().items():
        for record in next(iter(records.values())):
            assert record["sources"], f"{record['name']} in {name} cites no page"
            assert set(record["sources"]) <= files


def test_no_facts_the_pages_do_not_give():
    """The pages give no ages, languages, hours or e-mail addresses for any service."""
    for service in _seed_records()["services.json"]["services"]:
        assert "minimum_age" not in service and "maximum_age" not in service
        assert not service.get("languages")
        assert "email" not in service
        for contact in service.get("contacts", []):
            assert "email" not in contact


@pytest.mark.parametrize("phrase", ["Clay Arsenal", "Upper Albany", "Northeast", "211 Child Development Infoline"])
def test_named_places_and_lines_are_carried(phrase):
    text = (SEED / "services.json").read_text()
    assert phrase in text
    assert phrase in " ".join(p.read_text() for p in PAGES.glob("*.txt"))


def test_category_codes_are_hierarchical_and_unique():
    taxonomy = json.loads((SEED / "taxonomy.json").read_text())
    codes = [t["code"] for t in taxonomy["taxonomy_terms"]]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"occh-[a-z0-9-]+", code) for code in codes)
    ids = {t["id"] for t in taxonomy["taxonomy_terms"]}
    assert any(t.get("parent_id") in ids for t in taxonomy["taxonomy_terms"])
