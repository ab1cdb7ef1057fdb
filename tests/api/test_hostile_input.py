"""What an outside partner could send that once answered 500, or reached where it should not:
each a reproduction, on SQLite and PostgreSQL. Every refusal is a 4xx in the error envelope
(an OperationOutcome under /fhir) and writes nothing."""

from __future__ import annotations

import copy
import csv
import json
import logging
import uuid
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from api import create_app
from api.config import TestConfig as AppConfig
from api.extensions import db
from models import Referral, Service
from tests.helpers import FHIR_JSON, HELP_ME_GROW, HMG_CT, auth, body, bundle_for, move, one_engine, post_bundle, submit

HEALTHY_HOMES = "3521d2a6-fcd5-5474-8473-7efb4377ffcd"


def count_referrals(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Referral))
        db.session.remove()
        return count


def post_raw(client, keys, data: str | bytes, path: str = "/referrals", content_type: str = "application/json"):
    return client.post(
        path,
        data=data,
        content_type=content_type,
        headers=auth(keys["sender"], **{"Idempotency-Key": str(uuid.uuid4())}),
    )


def assert_refused(response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    data = response.get_json()
    if response.mimetype == FHIR_JSON:
        assert data["resourceType"] == "OperationOutcome"
    else:
        assert data["code"] == status and data["message"]
        if error:
            assert data["error"] == error
    return data


# ----------------------------------------------------------------------------- NUL and surrogates


@pytest.mark.parametrize(
    "path,status",
    [
        ("/programs/help%00", 404),
        ("/services/%00", 404),
        ("/services?search=a%00b", 422),
        ("/organizations?search=%00", 422),
        ("/services?sear%00ch=x", 422),
        ("/fhir/HealthcareService?name=a%00b", 400),
        ("/fhir/HealthcareService/%00", 404),
    ],
)
def test_a_nul_in_a_path_or_query_is_refused_not_a_500(reader, path, status):
    client = reader  # only reads: the module's shared database
    data = assert_refused(client.get(path), status)
    assert "NUL" in json.dumps(data)


def with_change(change) -> dict:
    data = body()
    change(data)
    return data


HOSTILE_TEXT = {
    "nul in the child's name": lambda d: d["child"].update(given_name="Zeph\x00yrine"),
    "nul in the reason": lambda d: d.update(reason="speech\x00delay"),
    "nul in the referrer's organization": lambda d: d["referrer"].update(organization="Hartford\x00Pediatrics"),
    "nul in the town": lambda d: d["child"].update(town="Hart\x00ford"),
    "nul in the e-mail": lambda d: d["guardian"].update(email="a\x00@example.org"),
    "lone surrogate in the child's name": lambda d: d["child"].update(given_name="Zeph\ud800yrine"),
    "lone surrogate in the guardian's name": lambda d: d["guardian"].update(name="Marisol \udfff"),
}


@pytest.mark.parametrize("change", HOSTILE_TEXT.values(), ids=HOSTILE_TEXT.keys())
def test_nul_or_a_lone_surrogate_in_a_referral_is_a_422_and_writes_nothing(app, client, keys, change):
    data = with_change(change)
    # json.dumps writes \u0000 and \ud800 escapes: what a client's JSON library sends.
    response = post_raw(client, keys, json.dumps(data))
    assert_refused(response, 422, "validation_error")
    assert count_referrals(app) == 0


def test_nul_in_a_status_reason_and_a_webhook_url_is_a_422(app, client, keys):
    referral = submit(client, keys).get_json()
    response = move(client, keys, referral["id"], "receiver", "rejected", reason="full\x00up")
    assert_refused(response, 422)
    assert client.get(f"/referrals/{referral['id']}", headers=auth(keys["sender"])).get_json()["status"] == "requested"
    response = client.post("/webhooks", json={"url": "http://127.0.0.1:9/\x00"}, headers=auth(keys["sender"]))
    assert_refused(response, 422)
    response = client.post(
        "/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["referral.created\ud800"]},
        headers=auth(keys["sender"]),
    )
    assert_refused(response, 422)


@pytest.mark.parametrize("text", ["Zeph\x00yrine", "Zeph\ud800yrine"], ids=["nul", "surrogate"])
def test_nul_or_a_surrogate_in_a_fhir_bundle_is_refused_and_writes_nothing(app, client, keys, text):
    bundle = bundle_for(body())
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["resource"]["name"][0]["given"] = [text]
    response = client.post(
        "/fhir",
        data=json.dumps(bundle),
        content_type=FHIR_JSON,
        headers=auth(keys["sender"], **{"Idempotency-Key": "k-1"}),
    )
    assert response.status_code == 422 and response.get_json()["resourceType"] == "OperationOutcome"
    assert count_referrals(app) == 0


# ----------------------------------------------------------------------------- dates far out


@pytest.mark.parametrize(
    "path",
    [
        "/services?modified_after=9999-12-31T23:59:59-12:00",
        "/services?modified_after=0001-01-01T00:00:00%2B14:00",
        "/organizations?modified_after=9999-12-31T23:59:59-12:00",
    ],
)
def test_a_date_time_out_of_range_is_a_422(reader, path):
    client = reader  # only reads: the module's shared database
    if "organizations" in path:  # organizations take no modified_after: refused as unknown
        assert client.get(path).status_code == 422
        return
    data = assert_refused(client.get(path), 422)
    assert "modified_after" in json.dumps(data["errors"])


def test_updated_since_out_of_range_is_a_422(client, keys):
    response = client.get("/referrals?updated_since=9999-12-31T23:59:59-12:00", headers=auth(keys["sender"]))
    assert_refused(response, 422)


@pytest.mark.parametrize("value", ["9999-12-31", "lt9999-12-31T23:59:59-12:00", "ge0001-01-01", "9999"])
def test_fhir_last_updated_far_out_is_a_400_not_a_500(client, keys, value):
    response = client.get(f"/fhir/HealthcareService?_lastUpdated={value.replace('+', '%2B')}")
    assert response.status_code == 400 and response.get_json()["resourceType"] == "OperationOutcome"
    response = client.get(f"/fhir/Task?_lastUpdated=gt{value.lstrip('lgte')}", headers=auth(keys["receiver"]))
    assert response.status_code == 400


@pytest.mark.parametrize("obtained_at", ["9999-12-31T23:59:59-12:00", "2999-01-01T00:00:00Z"])
def test_consent_obtained_in_the_far_future_is_a_422(app, client, keys, obtained_at):
    data = body()
    data["consent"]["obtained_at"] = obtained_at
    response = post_raw(client, keys, json.dumps(data))
    errors = assert_refused(response, 422)["errors"]
    assert "obtained_at" in errors["json"]["consent"]
    assert count_referrals(app) == 0


def test_consent_obtained_a_minute_ahead_is_allowed_as_clock_skew(client, keys):
    from datetime import datetime, timedelta

    data = body()
    data["consent"]["obtained_at"] = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert post_raw(client, keys, json.dumps(data)).status_code == 201


# ----------------------------------------------------------------------------- the JSON reader


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 10_000,
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 100 + "1" + "}" * 100,
        "1" * 5_001,
        '{"service_id": 1' + "0" * 5_000 + "}",
        '{"reason": 1e999}',
        '{"reason": NaN}',
        '{"urgency": "routine", "urgency": "urgent"}',
        "{not json",
        b"\xff\xfe not utf-8",
    ],
    ids=[
        "open brackets",
        "deep arrays",
        "deep objects",
        "long integer",
        "long integer field",
        "infinite number",
        "NaN",
        "duplicate key",
        "malformed",
        "not utf-8",
    ],
)
@pytest.mark.parametrize("path", ["/referrals", "/webhooks", "/fhir"])
@one_engine
def test_hostile_json_is_a_400_invalid_json_and_writes_nothing(app, client, keys, payload, path):
    content_type = FHIR_JSON if path == "/fhir" else "application/json"
    response = post_raw(client, keys, payload, path, content_type)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    if path == "/fhir":
        assert response.get_json()["resourceType"] == "OperationOutcome"
    else:
        assert_refused(response, 400, "invalid_json")
    assert count_referrals(app) == 0


def test_a_body_nested_within_the_bound_is_read(client, keys):
    data = body()
    data["child"]["extra"] = json.loads("[" * 30 + "]" * 30)
    response = post_raw(client, keys, json.dumps(data))
    assert response.status_code == 422  # an unknown field: read, then refused by the schema
    assert "extra" in response.get_json()["errors"]["json"]["child"]


def test_a_duplicate_key_in_a_nested_object_is_refused(app, client, keys):
    text = json.dumps(body()).replace('"given_name": "Zephyrine"', '"given_name": "Zephyrine", "given_name": "Other"')
    assert_refused(post_raw(client, keys, text), 400, "invalid_json")
    assert count_referrals(app) == 0


# ----------------------------------------------------------------------------- strict values


@pytest.mark.parametrize("value", ["true", 1, "yes", "1", None, [True]])
@one_engine
def test_consent_obtained_must_be_json_true(app, client, keys, value):
    data = body()
    data["consent"]["obtained"] = value
    errors = assert_refused(post_raw(client, keys, json.dumps(data)), 422)["errors"]
    assert "obtained" in errors["json"]["consent"]
    data = body()
    data["guardian"]["may_leave_message"] = value
    errors = assert_refused(post_raw(client, keys, json.dumps(data)), 422)["errors"]
    assert "may_leave_message" in errors["json"]["guardian"]
    assert count_referrals(app) == 0


@pytest.mark.parametrize(
    "group,field,value",
    [("child", "given_name", "12345"), ("child", "family_name", "  ..  "), ("guardian", "name", "+1 860 555")],
)
def test_names_must_hold_a_letter(app, client, keys, group, field, value):
    data = body()
    data[group][field] = value
    errors = assert_refused(post_raw(client, keys, json.dumps(data)), 422)["errors"]
    assert field in errors["json"][group]
    assert count_referrals(app) == 0


def test_names_in_any_script_are_taken(client, keys):
    data = body()
    data["child"]["given_name"] = "Zoë-María"
    data["child"]["family_name"] = "O'Brien 李"
    assert post_raw(client, keys, json.dumps(data)).status_code == 201


# ----------------------------------------------------------------------------- a 500 that remains


def test_an_unexpected_failure_is_logged_with_its_request_id(app, caplog):
    @app.route("/boom-for-test")
    def boom():
        raise RuntimeError("a value the client sent")

    with caplog.at_level(logging.ERROR, logger="occh.errors"):
        response = app.test_client().get("/boom-for-test", headers={"X-Request-ID": "partner-req-500"})
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "partner-req-500"
    records = [r for r in caplog.records if r.name == "occh.errors"]
    assert records and records[-1].fields["request_id"] == "partner-req-500"
    assert "a value the client sent" not in caplog.text


# ----------------------------------------------------------------------------- Host and Vary


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:5000", "localhost.evil.example", "127.0.0.2", "[::2]", "bad host"]
)
@one_engine
def test_an_untrusted_host_is_a_400_and_never_reflected(client, host):
    for path in ("/", "/fhir/metadata", "/services?search=help", "/nowhere"):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 400
        assert "evil" not in response.get_data(as_text=True)
        assert response.headers.get("Cache-Control") != "public, no-cache"


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:5000", "[::1]:5000", "[::1]", "LOCALHOST"])
@one_engine
def test_the_default_trusted_hosts_answer_on_any_port(client, host):
    response = client.get("/", headers={"Host": host})
    assert response.status_code == 200
    assert response.get_json()["profile"].startswith(f"http://{host.lower()}/")


def test_trusted_hosts_are_configurable(app, monkeypatch):
    monkeypatch.setenv("TRUSTED_HOSTS", "directory.example.org, .partners.example.org")
    other = create_app(AppConfig(app.config["SQLALCHEMY_DATABASE_URI"]))
    try:
        client = other.test_client()
        assert client.get("/", headers={"Host": "directory.example.org"}).status_code == 200
        assert client.get("/", headers={"Host": "a.partners.example.org:443"}).status_code == 200
        assert client.get("/", headers={"Host": "localhost"}).status_code == 400
        assert client.get("/", headers={"Host": "partners.example.org.evil.example"}).status_code == 400
    finally:
        with other.app_context():
            db.engine.dispose()


def test_hosts_cannot_fill_the_result_cache(app):
    cache = app.extensions["occh_result_cache"]
    client = app.test_client()
    for number in range(50):
        client.get("/services", headers={"Host": f"host-{number}.example"})
    assert len(cache.entries) == 0
    client.get("/services")
    assert len(cache.entries) == 1


def test_private_routes_vary_on_origin_when_cors_origins_are_set(app, keys, monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://partner.example")
    other = create_app(AppConfig(app.config["SQLALCHEMY_DATABASE_URI"]))
    try:
        client = other.test_client()
        for origin in ({}, {"Origin": "https://partner.example"}, {"Origin": "https://other.example"}):
            for path in ("/referrals", "/webhooks", "/fhir/Task"):
                response = client.get(path, headers=auth(keys["sender"], **origin))
                assert "Origin" in response.headers.get("Vary", ""), (path, origin)
    finally:
        with other.app_context():
            db.engine.dispose()


# ----------------------------------------------------------------------------- stranded referrals


def set_service(app, service_id: str, **values) -> None:
    with app.app_context():
        db.session.execute(update(Service).where(Service.id == uuid.UUID(service_id)).values(**values))
        db.session.commit()
        db.session.remove()


def test_a_service_without_a_program_refuses_referrals_with_the_reason(app, client, keys):
    set_service(app, HMG_CT, program_id=None)
    response = submit(client, keys)
    data = assert_refused(response, 422)
    assert "program" in data["message"] and "service_id" in data["errors"]
    response = post_bundle(client, keys, bundle_for(body()))
    assert response.status_code == 422 and response.get_json()["resourceType"] == "OperationOutcome"
    assert "program" in json.dumps(response.get_json())
    assert count_referrals(app) == 0


def test_moving_a_service_keeps_its_referrals_with_their_program_in_task_search(app, client, keys):
    referral = submit(client, keys).get_json()
    set_service(app, HMG_CT, program_id=uuid.UUID(HEALTHY_HOMES))

    def owned_by(program: str, key: str) -> list[str]:
        response = client.get(f"/fhir/Task?owner=Organization/{program}", headers=auth(key))
        assert response.status_code == 200
        return [entry["resource"]["id"] for entry in response.get_json().get("entry", [])]

    assert owned_by(HELP_ME_GROW, keys["receiver"]) == [referral["id"]]
    assert owned_by(HELP_ME_GROW, keys["sender"]) == [referral["id"]]
    assert owned_by(HEALTHY_HOMES, keys["sender"]) == []


def export(app, folder: Path) -> dict[str, Path]:
    result = app.test_cli_runner().invoke(args=["hsds", "export", str(folder)])
    assert result.exit_code == 0, result.output
    package = json.loads((folder / "datapackage.json").read_text())
    return {resource["name"]: folder / resource["path"] for resource in package["resources"]}


def rewrite_csv(path: Path, service_id: str, **values) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    for row in rows:
        if row["id"] == service_id:
            row.update(values)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_an_import_that_changes_a_service_with_open_referrals_lists_it(app, client, keys, tmp_path):
    first, second = submit(client, keys).get_json(), submit(client, keys).get_json()
    move(client, keys, second["id"], "receiver", "rejected", reason="Full this term.")  # closed: not counted
    submit(client, keys)
    paths = export(app, tmp_path / "package")
    rewrite_csv(paths["service"], HMG_CT, program_id=HEALTHY_HOMES)
    result = app.test_cli_runner().invoke(args=["hsds", "import", str(tmp_path / "package")])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith(f"service {HMG_CT}"))
    assert "program_id changed" in line and "2 open referrals" in line
    assert first["id"] in owned_ids(client, keys)

    # Importing the same package again changes nothing: nothing to list.
    again = app.test_cli_runner().invoke(args=["hsds", "import", str(tmp_path / "package")])
    assert f"service {HMG_CT}" not in again.output

    rewrite_csv(paths["service"], HMG_CT, status="inactive")
    result = app.test_cli_runner().invoke(args=["hsds", "import", str(tmp_path / "package")])
    assert any(line.startswith(f"service {HMG_CT}") and "status changed" in line for line in result.output.splitlines())


def owned_ids(client, keys) -> list[str]:
    response = client.get(f"/fhir/Task?owner=Organization/{HELP_ME_GROW}", headers=auth(keys["receiver"]))
    return [entry["resource"]["id"] for entry in response.get_json().get("entry", [])]


@pytest.mark.parametrize("resource_path", ["../outside.csv", "sub/../../outside.csv", "/tmp/outside.csv", "{absolute}"])
@one_engine
def test_a_package_path_that_leaves_the_folder_is_refused(app, tmp_path, resource_path):
    paths = export(app, tmp_path / "package")
    outside = tmp_path / "outside.csv"
    outside.write_bytes(paths["organization"].read_bytes())
    package_file = tmp_path / "package" / "datapackage.json"
    package = json.loads(package_file.read_text())
    changed = copy.deepcopy(package)
    for resource in changed["resources"]:
        if resource["name"] == "organization":
            resource["path"] = str(outside) if resource_path == "{absolute}" else resource_path
    package_file.write_text(json.dumps(changed))
    result = app.test_cli_runner().invoke(args=["hsds", "import", str(tmp_path / "package")])
    assert result.exit_code != 0
    assert "package folder" in result.output
    assert "Imported" not in result.output
