"""Validators for the HSDS 3.0 compiled schemas (Draft 2020-12, format checking on), and the
walk the Open Referral validators make over an HSDS API (`walk_and_validate`)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HSDS = Path(__file__).resolve().parents[1] / "reference" / "hsds-3.0" / "schema"
SEED = Path(__file__).resolve().parents[1] / "seed_data"


def offer_first_service_at_campus(app) -> dict:
    """Offer the first seeded service at the medical center's main campus (Hartford, 06106);
    return that service's seed record.

    The hospital's pages place no service at an address, so the seed has no service at a
    location; this test data gives the service-at-location endpoints something to serve.
    """
    from api.extensions import db
    from core import curation
    from schemas.inputs import ServiceIn

    service = json.loads((SEED / "services.json").read_text())["services"][0]
    campus = json.loads((SEED / "organizations.json").read_text())["organizations"][0]["locations"][0]
    with app.app_context():
        curation.save_service(db.session, ServiceIn().load({**service, "location_ids": [campus["id"]]}))
        db.session.commit()
    return service


@cache
def validator(name: str) -> Draft202012Validator:
    """`name` is a file under schema/compiled/ or schema/ (`service`, `taxonomy_term`, ...)."""
    path = HSDS / "compiled" / f"{name}.json"
    if not path.exists():
        path = HSDS / f"{name}.json"
    schema = json.loads(path.read_text())
    return Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def _registry() -> Registry:
    """The uncompiled taxonomy schemas refer to `taxonomy.json` and `metadata.json` by name;
    `metadata.json` is not shipped, so its compiled form (inside service.json) stands in."""
    metadata = json.loads((HSDS / "compiled" / "service.json").read_text())["properties"]["metadata"]["items"]
    taxonomy = json.loads((HSDS / "taxonomy.json").read_text())
    return Registry().with_resources(
        [
            ("taxonomy.json", Resource.from_contents(taxonomy, default_specification=DRAFT202012)),
            ("metadata.json", Resource.from_contents(metadata, default_specification=DRAFT202012)),
        ]
    )


@cache
def page_validator() -> Draft202012Validator:
    spec = json.loads((HSDS / "openapi.json").read_text())
    page = dict(spec["components"]["schemas"]["Page"])
    page["required"] = list(page["properties"])
    page["properties"] = {**page["properties"], "contents": {"type": "array"}}
    return Draft202012Validator(page)


@cache
def program_validator() -> Draft202012Validator:
    program = json.loads((HSDS / "compiled" / "service.json").read_text())["properties"]["program"]
    return Draft202012Validator(program, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(v: Draft202012Validator, body) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(body)]


@cache
def minimal_service_validator() -> Draft202012Validator:
    """A `minimal=true` service: HSDS's `id` and `last_modified` and nothing else."""
    service = json.loads((HSDS / "compiled" / "service.json").read_text())["properties"]
    schema = {
        "type": "object",
        "required": ["id", "last_modified"],
        "properties": {"id": service["id"], "last_modified": service["last_modified"]},
        "additionalProperties": False,
    }
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def root_validator() -> Draft202012Validator:
    """`GET /`, as HSDS's openapi.json defines it (every property required)."""
    spec = json.loads((HSDS / "openapi.json").read_text())
    schema = dict(spec["paths"]["/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    schema["required"] = list(schema["properties"])
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _validator(name: str) -> Draft202012Validator:
    return minimal_service_validator() if name == "service_minimal" else validator(name)


@dataclass(frozen=True)
class ListEndpoint:
    """A list as HSDS serves it: each item's schema, and where (and as what) an item is read by id."""

    url: str
    item_schema: str
    record_url: str | None = None
    record_schema: str | None = None


# Every list the HSDS API defines, in every shape its parameters ask for.
LIST_ENDPOINTS = (
    ListEndpoint("/services", "service_list", "/services/{id}", "service"),
    ListEndpoint("/services?full=true", "service"),
    ListEndpoint("/services?minimal=true", "service_minimal"),
    ListEndpoint("/organizations", "organization_list", "/organizations/{id}", "organization"),
    ListEndpoint("/organizations?full=true", "organization", "/organizations/{id}?full_service=true", "organization"),
    ListEndpoint("/organizations?full_service=true", "organization"),
    ListEndpoint(
        "/service_at_locations", "service_at_location_list", "/service_at_locations/{id}", "service_at_location"
    ),
    ListEndpoint("/service_at_locations?full=true", "service_at_location"),
    ListEndpoint("/taxonomies", "taxonomy", "/taxonomies/{id}", "taxonomy"),
    ListEndpoint("/taxonomy_terms", "taxonomy_term", "/taxonomy_terms/{id}", "taxonomy_term"),
    ListEndpoint("/taxonomy_terms?top_only=true", "taxonomy_term"),
)
RECORDS_BY_ID = 10  # records of each list read by id, as the validators do


@dataclass
class WalkReport:
    problems: list[str] = field(default_factory=list)
    validated: Counter = field(default_factory=Counter)  # (list URL, "items"|"records"|"ndjson") -> bodies validated
    pages: dict[str, list[int]] = field(default_factory=dict)  # list URL -> page numbers read


def _with(url: str, **params) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items() if value is not None)
    return f"{url}{'&' if '?' in url else '?'}{query}" if query else url


def walk_and_validate(client, per_page: int | None = None, endpoints=LIST_ENDPOINTS) -> WalkReport:
    """Walk the API as the Open Referral validators do and report every fault found.

    `GET /`; then each list at its first, a middle and its last page (by `total_pages`, with
    `per_page` when given, else the API's default), the envelope and every item validated;
    up to ten of its records read by id and validated; and the whole list as `format=ndjson`,
    every line validated and counted against `total_items`. Every body is checked against the
    HSDS 3.0 schema of its kind, with format checking on.
    """
    report = WalkReport()

    def check(name: str, body, where: str, tally: tuple[str, str]) -> None:
        report.validated[tally] += 1
        report.problems.extend(f"{where}: {problem}" for problem in errors(_validator(name), body))

    root = client.get("/")
    if root.status_code != 200:
        report.problems.append(f"/: status {root.status_code}")
    else:
        report.problems.extend(f"/: {problem}" for problem in errors(root_validator(), root.get_json()))

    for endpoint in endpoints:
        listed = []
        first = client.get(_with(endpoint.url, page=1, per_page=per_page))
        if first.status_code != 200:
            report.problems.append(f"{endpoint.url}: status {first.status_code}")
            continue
        total_pages, total_items = first.get_json()["total_pages"], first.get_json()["total_items"]
        numbers = sorted({1, (total_pages + 1) // 2, total_pages})
        report.pages[endpoint.url] = numbers
        for number in numbers:
            url = _with(endpoint.url, page=number, per_page=per_page)
            response = first if number == 1 else client.get(url)
            body = response.get_json()
            report.problems.extend(f"{url}: {problem}" for problem in errors(page_validator(), body))
            expected = {
                "page_number": number,
                "first_page": number == 1,
                "last_page": number == total_pages,
                "size": len(body["contents"]),
                "empty": not body["contents"],
                "total_items": total_items,
            }
            report.problems.extend(
                f"{url}: {key} is {body.get(key)!r}, not {value!r}"
                for key, value in expected.items()
                if body.get(key) != value
            )
            for item in body["contents"]:
                check(endpoint.item_schema, item, url, (endpoint.url, "items"))
                listed.append(item["id"])
        if endpoint.record_url:
            for record_id in listed[:RECORDS_BY_ID]:
                url = endpoint.record_url.format(id=record_id)
                response = client.get(url)
                if response.status_code != 200 or response.get_json().get("id") != record_id:
                    report.problems.append(f"{url}: status {response.status_code}, not the listed record")
                    continue
                check(endpoint.record_schema, response.get_json(), url, (endpoint.url, "records"))
        url = _with(endpoint.url, format="ndjson")
        streamed = client.get(url)
        if streamed.status_code != 200 or streamed.mimetype != "application/x-ndjson":
            report.problems.append(f"{url}: status {streamed.status_code}, {streamed.mimetype}")
            continue
        lines = streamed.get_data(as_text=True).splitlines()
        if len(lines) != total_items:
            report.problems.append(f"{url}: {len(lines)} lines for {total_items} items")
        for line in lines:
            check(endpoint.item_schema, json.loads(line), url, (endpoint.url, "ndjson"))
    return report


def partner_service_record(service_id: str, organization: dict, term: dict, town: str) -> dict:
    """A full HSDS service record as a partner's file would hold it (with a table this
    directory does not store, `funding`)."""
    location_id = str(uuid.uuid4())
    return {
        "id": service_id,
        "name": f"Family Resource Center of {town}",
        "description": "Playgroups and parenting support.",
        "status": "active",
        "accepts_referrals": True,
        "minimum_age": 0,
        "maximum_age": 5,
        "organization": organization,
        "phones": [{"id": str(uuid.uuid4()), "number": "860-555-0100", "type": "voice"}],
        "service_areas": [{"id": str(uuid.uuid4()), "name": f"{town} area", "towns": [town]}],
        "languages": [{"id": str(uuid.uuid4()), "code": "es", "name": "Spanish"}],
        "attributes": [{"id": str(uuid.uuid4()), "taxonomy_term": term, "link_type": "service_category"}],
        "service_at_locations": [
            {
                "id": str(uuid.uuid4()),
                "location": {
                    "id": location_id,
                    "location_type": "physical",
                    "name": f"{town} office",
                    "latitude": 41.76,
                    "longitude": -72.68,
                    "addresses": [
                        {
                            "id": str(uuid.uuid4()),
                            "address_1": "1 Main Street",
                            "city": town,
                            "state_province": "CT",
                            "postal_code": "06103",
                            "country": "US",
                            "address_type": "physical",
                        }
                    ],
                },
            }
        ],
        "referral_contact_points": [
            {
                "id": str(uuid.uuid4()),
                "channel": "phone",
                "value": "860-555-0101",
                "audience": "families",
                "purpose": "referral",
            }
        ],
        "funding": [{"id": str(uuid.uuid4()), "source": "A grant"}],
    }
