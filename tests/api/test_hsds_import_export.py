"""`flask hsds import` and `flask hsds export`, on SQLite and PostgreSQL.

What a user sees: the directory exported and imported into an empty database answers the same
HSDS JSON; HSDS's own examples are refused with their real faults (dangling references and a
latitude of 100), or imported in what is sound with --skip-invalid; files of full service
records import; every bad value is reported by file, line and field.
"""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

from core.hsds.export import describe_package
from tests.conftest import HSDS_REFERENCE
from tests.hsds import partner_service_record

EXAMPLES = HSDS_REFERENCE / "examples" / "csv"
EXAMPLE_TAXONOMY = "5c4d79d7-cc55-470e-9f1f-8cad074e4892"
EXAMPLE_SERVICE = "ac148810-d857-441c-9679-408f346de14b"


def all_items(client, url: str) -> list[dict]:
    items, page = [], 1
    while True:
        sep = "&" if "?" in url else "?"
        body = client.get(f"{url}{sep}per_page=100&page={page}").get_json()
        items += body["contents"]
        if body["last_page"]:
            return items
        page += 1


def directory_json(client) -> dict:
    """Every record of the directory as the API answers it, in full."""
    services = all_items(client, "/services?status=active&status=inactive&status=defunct&status=temporarily+closed")
    return {
        "services": [client.get(f"/services/{s['id']}").get_json() for s in services],
        "organizations": [
            client.get(f"/organizations/{o['id']}?full_service=true").get_json()
            for o in all_items(client, "/organizations")
        ],
        "programs": [client.get(f"/programs/{p['id']}").get_json() for p in all_items(client, "/programs")],
        "taxonomies": all_items(client, "/taxonomies"),
        "taxonomy_terms": [
            client.get(f"/taxonomy_terms/{t['id']}").get_json() for t in all_items(client, "/taxonomy_terms")
        ],
        "service_at_locations": all_items(client, "/service_at_locations"),
        "referral_contact_points": all_items(client, "/referral-contact-points"),
        "search": client.get("/services?search=asthma+lead&facets=category&facets=town").get_json(),
    }


def fault_lines(output: str) -> set[str]:
    return {line for line in output.splitlines() if " line " in line}


def test_the_seeded_directory_round_trips_exactly(app, empty_app, tmp_path):
    before = directory_json(app.test_client())
    seed = Path(__file__).resolve().parents[2] / "seed_data"
    assert len(before["services"]) == len(json.loads((seed / "services.json").read_text())["services"])
    assert len(before["taxonomy_terms"]) == len(json.loads((seed / "taxonomy.json").read_text())["taxonomy_terms"])
    exported = app.test_cli_runner().invoke(args=["hsds", "export", str(tmp_path / "package")])
    assert exported.exit_code == 0, exported.output
    package = json.loads((tmp_path / "package" / "datapackage.json").read_text())
    assert {"service", "organization", "referral_contact_point"} <= {r["name"] for r in package["resources"]}

    imported = empty_app.test_cli_runner().invoke(args=["hsds", "import", str(tmp_path / "package")])
    assert imported.exit_code == 0, imported.output
    assert "service: 18 new" in imported.output
    assert directory_json(empty_app.test_client()) == before

    etag = empty_app.test_client().get("/services").headers["ETag"]
    again = empty_app.test_cli_runner().invoke(args=["hsds", "import", str(tmp_path / "package")])
    assert again.exit_code == 0 and "service: 0 new, 0 updated, 18 unchanged" in again.output
    assert directory_json(empty_app.test_client()) == before
    # An import that changes nothing leaves the data version, and so every cache, as it was.
    assert empty_app.test_client().get("/services").headers["ETag"] == etag


EXAMPLE_FAULTS = {
    "organizations.csv line 2 field parent_organization_id: no organization has this id",
    "locations.csv line 2 field organization_id: no organization has this id",
    "locations.csv line 2 field latitude: must be between -90 and 90",
    "contacts.csv line 2 field organization_id: no organization has this id",
    "contacts.csv line 2 field service_at_location_id: no service_at_location has this id",
    "taxonomy_terms.csv line 2 field parent_id: no taxonomy_term has this id",
    "taxonomy_terms.csv line 2 field taxonomy_id: no taxonomy has this id",
    "attributes.csv line 2 field link_id: no record has this id",
}


def test_the_official_examples_are_refused_with_their_faults_and_nothing_is_written(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["hsds", "import", str(EXAMPLES)])
    assert result.exit_code == 1
    assert fault_lines(result.output) == EXAMPLE_FAULTS
    assert "funding.csv: 1 rows not imported: not stored by this directory" in result.output
    assert "services.csv column wait_time: 1 values not imported: not stored by this directory" in result.output
    client = empty_app.test_client()
    assert client.get(f"/taxonomies/{EXAMPLE_TAXONOMY}").status_code == 404
    assert client.get("/taxonomies").get_json()["total_items"] == 0


def test_skip_invalid_imports_what_is_sound_in_the_official_examples(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["hsds", "import", "--skip-invalid", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    lines = fault_lines(result.output)
    assert EXAMPLE_FAULTS <= lines
    # Rows that name a rejected row are rejected with that reason.
    assert (
        "programs.csv line 2 field organization_id: the organization it names was rejected (organizations.csv line 2)"
        in lines
    )
    assert "services.csv line 2 field program_id: the program it names was rejected (programs.csv line 2)" in lines
    assert "addresses.csv line 2 field location_id: the location it names was rejected (locations.csv line 2)" in lines
    # The taxonomy is the one sound row: everything else hangs on a rejected row.
    client = empty_app.test_client()
    taxonomy = client.get(f"/taxonomies/{EXAMPLE_TAXONOMY}")
    assert taxonomy.status_code == 200 and taxonomy.get_json()["name"] == "name"
    assert client.get(f"/services/{EXAMPLE_SERVICE}").status_code == 404
    assert "taxonomy: 1 new" in result.output and "13 rows rejected" in result.output


def test_an_ndjson_file_of_full_service_records_imports(client, runner, tmp_path):
    term = next(
        t
        for t in client.get("/taxonomy_terms?per_page=100").get_json()["contents"]
        if t["code"] == "occh-asthma-management"
    )
    organization = {
        "id": str(uuid.uuid4()),
        "name": "Greater Hartford Family Network",
        "description": "Family support.",
    }
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    records = [
        partner_service_record(ids[0], organization, term, "Hartford"),
        partner_service_record(ids[1], organization, term, "Enfield"),
    ]
    path = tmp_path / "services.ndjson"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))

    result = runner.invoke(args=["hsds", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "service: 2 new" in result.output and "organization: 1 new" in result.output
    assert "services.ndjson field funding: 2 records not imported: not stored by this directory" in result.output

    service = client.get(f"/services/{ids[0]}").get_json()
    assert service["organization"]["name"] == "Greater Hartford Family Network"
    assert service["phones"][0]["number"] == "860-555-0100"
    assert service["attributes"][0]["taxonomy_term"]["code"] == "occh-asthma-management"
    assert service["service_at_locations"][0]["location"]["addresses"][0]["city"] == "Hartford"
    assert service["referral_contact_points"][0]["purpose"] == "referral"
    # Indexed for search and filters at once.
    found = client.get("/services?town=Enfield&category=occh-asthma-management&language=es").get_json()
    assert [s["id"] for s in found["contents"]] == [ids[1]]
    near = client.get("/services?lat=41.76&lon=-72.68&proximity=1000").get_json()
    assert set(ids) <= {s["id"] for s in near["contents"]}


def test_a_json_array_reports_faults_by_line_and_nested_field(client, runner, tmp_path):
    term = client.get("/taxonomy_terms?per_page=1").get_json()["contents"][0]
    organization = {"id": str(uuid.uuid4()), "name": "Bristol Family Network", "description": "Family support."}
    good = partner_service_record(str(uuid.uuid4()), organization, term, "Hartford")
    bad = partner_service_record(str(uuid.uuid4()), organization, term, "Bristol")
    bad["phones"][0]["number"] = ""
    bad["service_at_locations"][0]["location"]["latitude"] = 100
    bad["status"] = "open"
    text = "[\n" + json.dumps(good, indent=1) + ",\n" + json.dumps(bad, indent=1) + "\n]\n"
    path = tmp_path / "records.json"
    path.write_text(text)
    start = 2 + len(json.dumps(good, indent=1).splitlines())  # the second record's first line

    result = runner.invoke(args=["hsds", "import", str(path)])
    assert result.exit_code == 1
    assert fault_lines(result.output) == {
        f"records.json line {start} field status: not one of active, inactive, defunct, temporarily closed",
        f"records.json line {start} field phones[0].number: required",
        f"records.json line {start} field service_at_locations[0].location.latitude: must be between -90 and 90",
    }
    assert client.get(f"/services/{good['id']}").status_code == 404  # all or nothing

    result = runner.invoke(args=["hsds", "import", "--skip-invalid", str(path)])
    assert result.exit_code == 0
    assert client.get(f"/services/{good['id']}").status_code == 200
    assert client.get(f"/services/{bad['id']}").status_code == 404


def _package(folder: Path, tables: dict[str, list[dict]]) -> Path:
    folder.mkdir()
    package = describe_package()
    package["resources"] = [r for r in package["resources"] if r["name"] in tables]
    (folder / "datapackage.json").write_text(json.dumps(package))
    paths = {r["name"]: r["path"] for r in package["resources"]}
    for name, rows in tables.items():
        with (folder / paths[name]).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return folder


def test_bad_values_are_reported_by_table_line_and_field(client, runner, tmp_path):
    org = str(uuid.uuid4())
    package = _package(
        tmp_path / "package",
        {
            "organization": [
                {"id": org, "name": "Ok Org", "description": "Fine.", "email": ""},
                {"id": "not-a-uuid", "name": "Bad Org", "description": "x", "email": "nobody"},
            ],
            "service": [
                {
                    "id": str(uuid.uuid4()),
                    "organization_id": org,
                    "name": "Ok",
                    "status": "active",
                    "minimum_age": "3",
                    "accepts_referrals": "true",
                },
                {
                    "id": str(uuid.uuid4()),
                    "organization_id": org,
                    "name": "",
                    "status": "active",
                    "minimum_age": "ten",
                    "accepts_referrals": "maybe",
                },
                {
                    "id": str(uuid.uuid4()),
                    "organization_id": str(uuid.uuid4()),
                    "name": "Orphan",
                    "status": "active",
                    "minimum_age": "",
                    "accepts_referrals": "",
                },
            ],
        },
    )
    result = runner.invoke(args=["hsds", "import", str(package)])
    assert result.exit_code == 1
    assert fault_lines(result.output) == {
        "organizations.csv line 3 field id: not a UUID",
        "organizations.csv line 3 field email: not an e-mail address",
        "services.csv line 3 field name: required",
        "services.csv line 3 field minimum_age: not a number",
        "services.csv line 3 field accepts_referrals: not true or false",
        "services.csv line 4 field organization_id: no organization has this id",
    }
    assert "Nothing imported" in result.output
    assert client.get(f"/organizations/{org}").status_code == 404


def test_export_writes_a_data_package_with_hsds_tables(runner, tmp_path):
    result = runner.invoke(args=["hsds", "export", str(tmp_path / "out")])
    assert result.exit_code == 0
    with (tmp_path / "out" / "services.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 18
    assert {"id", "organization_id", "program_id", "name", "status", "last_modified", "accepts_referrals"} <= set(
        rows[0]
    )
    with (tmp_path / "out" / "programs.csv").open(newline="") as handle:
        assert "help-me-grow" in {row["slug"] for row in csv.DictReader(handle)}


def test_organizations_may_name_a_parent_further_on_in_a_long_file(client, runner, tmp_path):
    # 1,200 organizations are read in two batches; the first ones name parents in the second.
    ids = [str(uuid.uuid4()) for _ in range(1200)]
    rows = [
        {
            "id": ids[i],
            "name": f"Network {i}",
            "description": "Family support.",
            "email": "",
            "parent_organization_id": "",
        }
        for i in range(1200)
    ]
    rows[0]["parent_organization_id"] = ids[1199]  # the last row
    rows[1]["parent_organization_id"] = ids[0]  # whose parent is further on still
    rows[2]["parent_organization_id"] = str(uuid.uuid4())  # named nowhere
    rows[3]["parent_organization_id"] = ids[1198]
    rows[1198]["email"] = "nobody"  # rejected, and so is the row that names it
    package = _package(tmp_path / "package", {"organization": rows})

    result = runner.invoke(args=["hsds", "import", str(package)])
    assert result.exit_code == 1
    assert fault_lines(result.output) == {
        "organizations.csv line 4 field parent_organization_id: no organization has this id",
        "organizations.csv line 1200 field email: not an e-mail address",
    }
    assert "(1 more faults in rows that name them)" in result.output
    assert client.get(f"/organizations/{ids[0]}").status_code == 404

    result = runner.invoke(args=["hsds", "import", "--skip-invalid", str(package)])
    assert result.exit_code == 0, result.output
    assert (
        "organizations.csv line 5 field parent_organization_id: the organization it names was rejected "
        "(organizations.csv line 1200)" in fault_lines(result.output)
    )
    assert "organization: 1197 new" in result.output and "3 rows rejected" in result.output
    assert client.get(f"/organizations/{ids[0]}").get_json()["parent_organization_id"] == ids[1199]
    assert client.get(f"/organizations/{ids[1]}").get_json()["parent_organization_id"] == ids[0]
    assert client.get(f"/organizations/{ids[3]}").status_code == 404


def test_an_update_keeps_what_the_file_does_not_carry(client, runner, tmp_path):
    """A plain HSDS services.csv (no accepts_referrals, no program) that renames a seeded
    service changes its name and nothing the file has no column for."""
    before = client.get("/services?per_page=1").get_json()["contents"][0]
    before = client.get(f"/services/{before['id']}").get_json()
    package = _package(
        tmp_path / "package",
        {
            "service": [
                {
                    "id": before["id"],
                    "organization_id": before["organization_id"],
                    "name": before["name"] + " (renamed)",
                    "status": "active",
                }
            ]
        },
    )
    result = runner.invoke(args=["hsds", "import", str(package)])
    assert result.exit_code == 0, result.output
    after = client.get(f"/services/{before['id']}").get_json()
    assert after["name"] == before["name"] + " (renamed)"
    unchanged = {k: v for k, v in before.items() if k not in ("name", "last_modified")}
    assert {k: after.get(k) for k in unchanged} == unchanged


def test_a_file_that_is_not_utf8_is_refused_with_a_clear_message(client, runner, tmp_path):
    org = str(uuid.uuid4())
    package = _package(tmp_path / "package", {"organization": [{"id": org, "name": "Org", "description": "x"}]})
    path = next(package.glob("organizations.csv"))
    path.write_bytes(path.read_bytes().replace(b"Org", "Café".encode("cp1252")))
    result = runner.invoke(args=["hsds", "import", str(package)])
    assert result.exit_code == 1
    assert "organizations.csv: not UTF-8 text." in result.output
    assert "Traceback" not in result.output
    assert client.get(f"/organizations/{org}").status_code == 404


def test_values_the_database_cannot_hold_are_faults_not_crashes(client, runner, tmp_path):
    org, service = str(uuid.uuid4()), str(uuid.uuid4())
    package = _package(
        tmp_path / "package",
        {
            "organization": [{"id": org, "name": "Org", "description": "A\x00B"}],
            "service": [{"id": service, "organization_id": org, "name": "S", "status": "active"}],
            "phone": [
                {
                    "id": str(uuid.uuid4()),
                    "service_id": service,
                    "number": "860-555-0100",
                    "extension": "99999999999999999999",
                }
            ],
        },
    )
    result = runner.invoke(args=["hsds", "import", str(package)])
    assert result.exit_code == 1, result.output
    assert fault_lines(result.output) == {
        "organizations.csv line 2 field description: holds a NUL character",
        "phones.csv line 2 field extension: outside the integer range",
    }
    assert client.get(f"/organizations/{org}").status_code == 404


def test_an_address_imported_later_places_its_location_services_on_the_map(client, runner, tmp_path):
    """A location without coordinates is placed by its address's ZIP code: an address that
    arrives in a later import puts the location's services within reach of near-me search."""
    org, location, service = (str(uuid.uuid4()) for _ in range(3))
    first = _package(
        tmp_path / "first",
        {
            "organization": [{"id": org, "name": "Org", "description": "x"}],
            "location": [{"id": location, "organization_id": org, "name": "Clinic", "location_type": "physical"}],
            "service": [{"id": service, "organization_id": org, "name": "Zebra finch club", "status": "active"}],
            "service_at_location": [{"id": str(uuid.uuid4()), "service_id": service, "location_id": location}],
        },
    )
    assert runner.invoke(args=["hsds", "import", str(first)]).exit_code == 0
    near = "/services?search=zebra&postcode=06106&proximity=2000"
    assert client.get(near).get_json()["total_items"] == 0

    second = _package(
        tmp_path / "second",
        {
            "address": [
                {
                    "id": str(uuid.uuid4()),
                    "location_id": location,
                    "address_1": "1 Main St",
                    "city": "Hartford",
                    "state_province": "CT",
                    "postal_code": "06106",
                    "country": "US",
                    "address_type": "physical",
                }
            ]
        },
    )
    result = runner.invoke(args=["hsds", "import", str(second)])
    assert result.exit_code == 0, result.output
    assert [s["id"] for s in client.get(near).get_json()["contents"]] == [service]


def test_what_a_record_without_an_id_holds_is_refused_with_it(client, runner, tmp_path):
    phone = str(uuid.uuid4())
    record = {"name": "No id", "status": "active", "phones": [{"id": phone, "number": "860-555-0100"}]}
    path = tmp_path / "records.ndjson"
    path.write_text(json.dumps(record) + "\n")
    result = runner.invoke(args=["hsds", "import", "--skip-invalid", str(path)])
    assert "records.ndjson line 1 field id: required" in fault_lines(result.output)
    assert "phone: 0 new" in result.output or "phone:" not in result.output
    export = runner.invoke(args=["hsds", "export", str(tmp_path / "out")])
    assert export.exit_code == 0
    assert phone not in (tmp_path / "out" / "phones.csv").read_text()
