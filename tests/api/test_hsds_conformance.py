"""The directory is an HSDS 3.0 API: every path and query parameter of HSDS's openapi.json is
served, and every list and record validates against the HSDS 3.0 schemas."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.hsds import (
    HSDS,
    LIST_ENDPOINTS,
    RECORDS_BY_ID,
    ListEndpoint,
    errors,
    offer_first_service_at_campus,
    page_validator,
    partner_service_record,
    program_validator,
    validator,
    walk_and_validate,
)


@pytest.fixture
def client(app):
    """The seeded directory, plus one service offered at the main campus."""
    offer_first_service_at_campus(app)
    return app.test_client()


@pytest.fixture(scope="module")
def offered(shared_app):
    """The module's shared database (for tests that only read), with the same service offered."""
    offer_first_service_at_campus(shared_app)
    return shared_app


def test_the_validators_walk_finds_no_fault(client):
    """Every list, in every shape, at its first, a middle and its last page, ten records of
    each by id, and the whole list as ndjson: every body is valid HSDS 3.0."""
    report = walk_and_validate(client, per_page=4)
    assert report.problems == []
    assert report.pages["/services"] == [1, 3, 5]  # 18 services, 4 a page: a real middle page
    for endpoint in LIST_ENDPOINTS:
        assert report.validated[(endpoint.url, "items")] > 0, f"{endpoint.url} listed nothing to validate"
        assert report.validated[(endpoint.url, "ndjson")] > 0, f"{endpoint.url} streamed nothing"
        if endpoint.record_url:
            assert report.validated[(endpoint.url, "records")] > 0
    assert report.validated[("/services", "records")] == RECORDS_BY_ID


def test_the_walk_at_the_default_page_size_finds_no_fault(client):
    report = walk_and_validate(client)
    assert report.problems == []
    assert report.pages["/services"] == [1]  # 18 services fit the default page of 20


def test_the_walk_passes_over_a_directory_imported_from_a_data_package(app, empty_app, tmp_path):
    """A directory that came in through `flask hsds import` is served as valid HSDS too: the
    seeded directory plus records from a partner's NDJSON file (an organization of their own,
    services at addressed locations) are exported as a data package and imported into an
    empty database, which the validators then walk."""
    offer_first_service_at_campus(app)
    source = app.test_client()
    term = next(
        t
        for t in source.get("/taxonomy_terms?per_page=100").get_json()["contents"]
        if t["code"] == "occh-asthma-management"
    )
    partner = {"id": str(uuid.uuid4()), "name": "Greater Hartford Family Network", "description": "Family support."}
    towns = ["Hartford", "Enfield", "Bristol", "Windsor", "Manchester"]
    records = [partner_service_record(str(uuid.uuid4()), partner, term, town) for town in towns]
    (tmp_path / "partner.ndjson").write_text("".join(json.dumps(record) + "\n" for record in records))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["hsds", "import", str(tmp_path / "partner.ndjson")]).exit_code == 0
    exported = runner.invoke(args=["hsds", "export", str(tmp_path / "package")])
    assert exported.exit_code == 0, exported.output

    imported = empty_app.test_cli_runner().invoke(args=["hsds", "import", str(tmp_path / "package")])
    assert imported.exit_code == 0, imported.output
    client = empty_app.test_client()
    assert client.get("/services").get_json()["total_items"] == 18 + len(towns)
    report = walk_and_validate(client, per_page=4)
    assert report.problems == []
    assert report.pages["/services"] == [1, 3, 6]  # 23 services, 4 a page
    assert report.validated[("/service_at_locations", "records")] > len(towns)


def test_the_walk_reports_a_fault(client):
    """The walk does fail an API that breaks HSDS (so the tests above can fail)."""
    broken = ListEndpoint("/taxonomy_terms", "service_list")  # terms have no `status`
    report = walk_and_validate(client, endpoints=[broken])
    assert any("'status' is a required property" in problem for problem in report.problems)


def _spec_parameters():
    """(path, parameter name) for every query parameter of every path of HSDS's openapi.json."""
    spec = json.loads((HSDS / "openapi.json").read_text())
    shared = spec["components"]["parameters"]
    for path, item in spec["paths"].items():
        yield path, None
        for parameter in item["get"].get("parameters", []):
            parameter = shared[parameter["$ref"].rsplit("/", 1)[1]] if "$ref" in parameter else parameter
            if parameter["in"] == "query":
                yield path, parameter["name"]


SPEC_PARAMETERS = list(_spec_parameters())


def _sample(client, name: str) -> dict:
    """A value a user would send for an HSDS query parameter (with the companion it needs)."""
    term = client.get("/taxonomy_terms?top_only=true&per_page=1").get_json()["contents"][0]
    organization = client.get("/organizations?per_page=1").get_json()["contents"][0]
    samples = {
        "search": {"search": "asthma"},
        "page": {"page": 1},
        "per_page": {"per_page": 5},
        "format": {"format": "ndjson"},
        "taxonomy_term_id": {"taxonomy_term_id": term["id"]},
        "taxonomy_id": {"taxonomy_id": term["taxonomy_id"]},
        "organization_id": {"organization_id": organization["id"]},
        "modified_after": {"modified_after": "2024-01-01T00:00:00Z"},
        "minimal": {"minimal": "true"},
        "full": {"full": "true"},
        "full_service": {"full_service": "true"},
        "postcode": {"postcode": "06106"},
        "proximity": {"postcode": "06106", "proximity": "5000"},
        "top_only": {"top_only": "true"},
        "parent_id": {"parent_id": term["id"]},
    }
    return samples[name]


def _path_url(client, path: str) -> str:
    """The HSDS path with `{id}` replaced by the id of a record it serves."""
    if "{id}" not in path:
        return path
    listed = client.get(path.replace("/{id}", "") + "?per_page=1").get_json()["contents"]
    assert listed, f"{path}: nothing to read"
    return path.replace("{id}", listed[0]["id"])


@pytest.mark.parametrize("path,name", SPEC_PARAMETERS, ids=[f"{p} {n or ''}".strip() for p, n in SPEC_PARAMETERS])
def test_every_hsds_path_takes_every_parameter_hsds_defines(offered, path, name):
    """Read from HSDS's own openapi.json, so a path or parameter it adds cannot go missing here.
    Only reads: on the module's shared database."""
    client = offered.test_client()
    url = _path_url(client, path)
    params = _sample(client, name) if name else {}
    response = client.get(url, query_string=params)
    assert response.status_code == 200, (url, params, response.get_json())
    if params.get("format") == "ndjson":
        assert response.mimetype == "application/x-ndjson"
    else:
        assert response.is_json


def test_hsds_openapi_lists_the_parameters_tested():
    """The list above is the spec's: all sixteen of its query parameters, on its eleven paths."""
    assert len({path for path, _ in SPEC_PARAMETERS}) == 11
    assert {name for _, name in SPEC_PARAMETERS if name} == {
        "search",
        "page",
        "per_page",
        "format",
        "taxonomy_term_id",
        "taxonomy_id",
        "organization_id",
        "modified_after",
        "minimal",
        "full",
        "full_service",
        "postcode",
        "proximity",
        "top_only",
        "parent_id",
    }


def test_an_unknown_parameter_is_still_refused(client):
    response = client.get("/services?taxonomy_term=occh-asthma")
    assert response.status_code == 422
    assert "taxonomy_term" in response.get_json()["errors"]["query"]


def test_our_openapi_documents_every_hsds_parameter_and_ndjson(client):
    ours = client.get("/openapi.json").get_json()["paths"]
    for path, name in SPEC_PARAMETERS:
        match = [ours[p]["get"] for p in ours if re.fullmatch(re.sub(r"\{id\}", r"\{[a-z_]+\}", path), p)]
        assert match, f"{path} is not in our OpenAPI document"
        if name:
            assert name in {p["name"] for p in match[0].get("parameters", [])}, (path, name)
        if name == "format":
            assert "application/x-ndjson" in match[0]["responses"]["200"]["content"], path


def test_programs_validate_as_hsds_programs(client):
    body = client.get("/programs?per_page=100").get_json()
    assert not errors(page_validator(), body)
    assert body["contents"]
    for program in body["contents"]:
        assert not errors(program_validator(), program)
        for service in program["services"]:
            assert not errors(validator("service_list"), service)


def test_validation_is_real(client):
    """The validators do reject what HSDS forbids (so the tests above can fail)."""
    record = client.get("/services?full=true&per_page=1").get_json()["contents"][0]
    assert errors(validator("service"), {**record, "id": "not-a-uuid"})
    assert errors(validator("service"), {**record, "status": "open"})
    assert errors(validator("service"), {k: v for k, v in record.items() if k != "name"})
    assert errors(validator("service"), {**record, "email": "not an address"})
    assert errors(validator("service"), {**record, "last_modified": None})
