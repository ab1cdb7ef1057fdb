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
PAGES = ROOT.parent / "shared" / "seeds"


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
    services["services"][4]["referral_contact_points"][0]["channel"] = "carrier pigeon"
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
    return {name: json.loads((SEED / name).read_text()) for name in ("organizations.json", "programs.json", "services.json")}


def test_every_phone_and_contact_value_is_on_the_hospitals_pages():
    pages = " ".join(p.read_text() for p in PAGES.glob("*.txt"))
    checked = 0
    for records in _seed_records().values():
        for _, value in _all_values(records, lambda k: k in ("number", "value", "email", "url", "website")):
            assert value in pages, f"{value!r} is not on any source page"
            checked += 1
    assert checked >= 10


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
