"""The bulk loader (core.bulk) leaves the database exactly as curation, record by record, would.

The same synthetic records (bench/generate.py's Generator, with contacts, programs, several
areas and repeated categories added) are loaded once through curation.save_organization /
save_service and once through core.bulk, into two databases of the same engine; every table
they touch must then hold the same rows, apart from `last_modified`, and the API must answer
the same. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.cli import SEED_DIR, load_directory
from api.extensions import db
from core import bulk, curation
from core.errors import InvalidData
from models import (
    Address,
    Attribute,
    Contact,
    Language,
    Location,
    Organization,
    Phone,
    ReferralContactPoint,
    SearchWord,
    SearchWordVariant,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    ServicePoint,
    ServiceSearch,
)
from schemas.inputs import OrganizationIn, ServiceIn

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

PROGRAMS = json.loads((ROOT / "seed_data" / "programs.json").read_text())["programs"]
HELP_ME_GROW = next(p for p in PROGRAMS if p["slug"] == "help-me-grow")
CAMPUS = json.loads((ROOT / "seed_data" / "organizations.json").read_text())["organizations"][0]["locations"][0]["id"]

TABLES = [
    Organization,
    Location,
    Address,
    Service,
    Phone,
    Contact,
    Language,
    ReferralContactPoint,
    ServiceArea,
    ServiceAreaTown,
    Attribute,
    ServiceAtLocation,
    ServiceSearch,
    SearchWord,
    SearchWordVariant,
    ServicePoint,
]
SKIPPED_COLUMNS = {"last_modified", "id@service_search"}


def directory(services: int = 240, seed: int = 7) -> tuple[list[dict], list[dict]]:
    """Raw organization and service records, with what the generator leaves out added."""
    generator = generate.Generator(seed)
    organizations: list[dict] = []
    records: list[dict] = []
    organization = town = None
    for index in range(services):
        if index % generate.SERVICES_PER_ORGANIZATION == 0:
            organization, town = generator.organization(index // generate.SERVICES_PER_ORGANIZATION)
            # Placed by its ZIP code rather than by its own coordinates.
            organization["locations"][0].pop("latitude")
            organization["locations"][0].pop("longitude")
            organizations.append(organization)
        record = generator.service(index, organization, town)
        if index % 7 == 0:
            record["organization_id"] = HELP_ME_GROW["organization_id"]
            record["program_id"] = HELP_ME_GROW["id"]
            record["location_ids"] = [CAMPUS, CAMPUS]
        if index % 5 == 0:
            record["contacts"] = [
                {
                    "id": str(generator.id("contact", index)),
                    "name": "Intake coordinator",
                    "email": f"coordinator{index}@example.org",
                    "phones": [generator.phone("contact", index)],
                }
            ]
        if index % 11 == 0:
            record["categories"] = record["categories"] * 2 + ["occh-lead-poisoning-prevention"]
            record["service_areas"] += [
                {"id": str(generator.id("area2", index)), "name": "Zebra Valley", "towns": ["Windsor", "avon", "Avon"]},
                {"id": str(generator.id("area3", index)), "description": "Unnamed area in the hills", "towns": []},
            ]
        records.append(record)
    return organizations, records


def validated(organizations: list[dict], services: list[dict]) -> tuple[list[dict], list[dict]]:
    return [OrganizationIn().load(o) for o in organizations], [ServiceIn().load(s) for s in services]


def load_with_curation(app, organizations: list[dict], services: list[dict]) -> None:
    with app.app_context():
        for record in organizations:
            curation.save_organization(db.session, record)
        for record in services:
            curation.save_service(db.session, record)
        db.session.commit()


def load_in_bulk(app, organizations: list[dict], services: list[dict], batch: int = 100) -> None:
    with app.app_context():
        assert bulk.insert_organizations(db.session, organizations) == len(organizations)
        for start in range(0, len(services), batch):
            assert bulk.insert_services(db.session, services[start : start + batch]) == len(
                services[start : start + batch]
            )
            db.session.commit()


def snapshot(app) -> dict[str, list[tuple]]:
    """Every row of every table the loaders touch, without last_modified, order-free."""
    tables = {}
    with app.app_context():
        for model in TABLES:
            table = model.__table__
            columns = [
                c
                for c in table.columns
                if c.key not in SKIPPED_COLUMNS and f"{c.key}@{table.name}" not in SKIPPED_COLUMNS
            ]
            rows = db.session.execute(select(*columns)).all()
            tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
        db.session.remove()
    return tables


def without_last_modified(value):
    if isinstance(value, dict):
        return {k: without_last_modified(v) for k, v in value.items() if k != "last_modified"}
    if isinstance(value, list):
        return [without_last_modified(v) for v in value]
    return value


def seeded(empty_app):
    with empty_app.app_context():
        load_directory(db.session, SEED_DIR)
        db.session.commit()
        db.session.remove()
    return empty_app


def test_bulk_load_leaves_the_same_rows_and_answers_as_curation(app, empty_app):
    organizations, services = validated(*directory())
    load_with_curation(app, copy.deepcopy(organizations), copy.deepcopy(services))
    bulk_app = seeded(empty_app)
    load_in_bulk(bulk_app, organizations, services)

    by_curation, by_bulk = snapshot(app), snapshot(bulk_app)
    for table in by_curation:
        assert by_bulk[table] == by_curation[table], table
    assert len(by_bulk["service"]) > len(services)
    assert by_bulk["service_point"] and by_bulk["contact"] and by_bulk["service_area_town"]

    one, other = app.test_client(), bulk_app.test_client()
    for query in ["tutoring", "asthma", "hartford", "lead", "intake coordinator", "help me grow", "tutering"]:
        params = {"search": query, "per_page": 50}
        assert one.get("/services", query_string=params).get_json()["total_items"] > 0, query
        assert without_last_modified(other.get("/services", query_string=params).get_json()) == without_last_modified(
            one.get("/services", query_string=params).get_json()
        ), query
    near = {"lat": 41.7637, "lon": -72.6851, "proximity": 20000, "sort": "distance", "per_page": 50}
    assert without_last_modified(other.get("/services", query_string=near).get_json()) == without_last_modified(
        one.get("/services", query_string=near).get_json()
    )
    for record in services[::23]:
        url = f"/services/{record['id']}"
        response = other.get(url)
        assert response.status_code == 200
        assert without_last_modified(response.get_json()) == without_last_modified(one.get(url).get_json())


@pytest.mark.parametrize("broken", ["category", "organization", "program", "location"])
def test_a_batch_with_a_bad_reference_writes_nothing(app, broken):
    organizations, services = validated(*directory(services=60))
    bad = copy.deepcopy(services[30])
    if broken == "category":
        bad["categories"].append("no-such-category")
    elif broken == "organization":
        bad["organization_id"] = uuid.uuid4()
    elif broken == "program":
        bad["program_id"] = uuid.uuid4()
    else:
        bad["location_ids"].append(uuid.uuid4())
    batch = services[:30] + [bad] + services[31:]
    with app.app_context():
        session = db.session
        bulk.insert_organizations(session, organizations)
        session.commit()
        before = {model: session.scalar(select(func.count()).select_from(model)) for model in TABLES}

        with pytest.raises(InvalidData) as raised:
            bulk.insert_services(session, batch)
        after = {model: session.scalar(select(func.count()).select_from(model)) for model in TABLES}
        assert after == before

        # The same message and field errors as curation gives for the record.
        nested = session.begin_nested()
        with pytest.raises(InvalidData) as by_curation:
            curation.save_service(session, copy.deepcopy(bad))
        nested.rollback()
        assert (raised.value.message, raised.value.errors) == (by_curation.value.message, by_curation.value.errors)


def test_a_program_of_another_organization_is_refused_like_curation(app):
    _, services = validated(*directory(services=1))
    record = services[0]
    record["organization_id"] = uuid.UUID(HELP_ME_GROW["organization_id"])
    other_program = next(p for p in PROGRAMS if p["organization_id"] != HELP_ME_GROW["organization_id"])
    record["program_id"] = uuid.UUID(other_program["id"])
    record["location_ids"] = []
    with app.app_context():
        with pytest.raises(InvalidData) as raised:
            bulk.insert_services(db.session, [record])
        assert raised.value.errors == {"program_id": ["Not a program of this organization."]}


def test_an_unknown_parent_organization_is_refused(app):
    organizations, _ = validated(*directory(services=1))
    organizations[0]["parent_organization_id"] = uuid.uuid4()
    with app.app_context():
        with pytest.raises(InvalidData) as raised:
            bulk.insert_organizations(db.session, organizations)
        assert raised.value.errors == {"parent_organization_id": ["Unknown organization id."]}
        assert db.session.get(Organization, organizations[0]["id"]) is None


def test_records_already_in_the_database_are_updated_as_curation_would(app):
    raw_organizations, raw_services = directory(services=20)
    organizations, services = validated(raw_organizations, raw_services)
    client = app.test_client()
    with app.app_context():
        session = db.session
        bulk.insert_organizations(session, organizations)
        bulk.insert_services(session, services[:10])
        session.commit()

        # The organization again, renamed; a service again, renamed and recategorised; a new
        # service that takes over a phone of an existing one; and nine new services.
        organization = OrganizationIn().load({**raw_organizations[0], "name": "Quokka Family Agency"})
        renamed = ServiceIn().load(
            {**raw_services[3], "name": "Quokka Reading Circle", "categories": ["occh-advocacy"]}
        )
        phone_id = next(s["phones"][0]["id"] for s in raw_services[:10] if s["phones"])
        taker = ServiceIn().load({**raw_services[10], "phones": [{"id": phone_id, "number": "860-555-0100"}]})
        assert bulk.insert_organizations(session, [organization]) == 1
        assert bulk.insert_services(session, [renamed, taker] + services[11:]) == 11
        session.commit()

        assert session.get(Organization, organization["id"]).name == "Quokka Family Agency"
        service = session.get(Service, renamed["id"])
        assert service.name == "Quokka Reading Circle"
        assert [attribute.taxonomy_term.code for attribute in service.attributes] == ["occh-advocacy"]
        ids = [s["id"] for s in services]
        assert session.scalar(select(func.count()).select_from(Service).where(Service.id.in_(ids))) == 20
        phone = session.get(Phone, uuid.UUID(phone_id))
        assert (phone.service_id, phone.number) == (taker["id"], "860-555-0100")

    # The renamed organization's services are reindexed; the renamed service is found by its name.
    found = client.get("/services", query_string={"search": "quokka", "per_page": 100}).get_json()["contents"]
    assert str(renamed["id"]) in {s["id"] for s in found}
    of_organization = {
        str(s["id"]) for s in services if s["organization_id"] == organization["id"] and s["status"] == "active"
    }
    assert of_organization <= {s["id"] for s in found}
    assert client.get(f"/services/{renamed['id']}").get_json()["name"] == "Quokka Reading Circle"


def test_loading_the_same_batch_twice_changes_nothing(app):
    organizations, services = validated(*directory(services=30))
    with app.app_context():
        bulk.insert_organizations(db.session, organizations)
        bulk.insert_services(db.session, services)
        db.session.commit()
    first = snapshot(app)
    with app.app_context():
        bulk.insert_organizations(db.session, copy.deepcopy(organizations))
        bulk.insert_services(db.session, copy.deepcopy(services))
        db.session.commit()
        stamps = set(
            db.session.scalars(select(Service.last_modified).where(Service.id.in_([s["id"] for s in services])))
        )
    assert snapshot(app) == first
    assert len(stamps) == 1  # not rewritten by the second load


def test_saving_an_organization_with_location_phones_again_changes_nothing(app):
    """An organization's own phones are not its locations' phones: saving the same record
    twice keeps its last_modified and leaves its services' index alone."""
    organizations, _ = validated(*directory(services=1))
    record = next(o for o in organizations if any(location["phones"] for location in o["locations"]))
    with app.app_context():
        curation.save_organization(db.session, copy.deepcopy(record))
        db.session.commit()
        stamp = db.session.get(Organization, record["id"]).last_modified
        curation.save_organization(db.session, copy.deepcopy(record))
        db.session.commit()
        assert db.session.get(Organization, record["id"]).last_modified == stamp
        assert sorted(p.number for p in db.session.get(Organization, record["id"]).phones) == sorted(
            p["number"] for p in record["phones"]
        )
