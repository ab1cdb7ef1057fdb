"""One rule on every door: what a newcomer stumbled on (issue 16, part 6). The urgency of a
referral, its empty fields, language tags and the child's age are the same through `/referrals`
and FHIR; CORS lets a browser send and read X-Request-ID; the CLI refuses a blank client name
and says what to do on a database that has no tables yet."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from marshmallow import ValidationError

from api import config, create_app
from api.extensions import db
from core import curation
from core import referrals as referral_rules
from models import Referral
from schemas.args import ServiceListArgs
from schemas.inputs import ServiceIn
from schemas.referrals import ReferralIn
from schemas.text import LANGUAGE_MESSAGE, primary_language
from tests.conftest import _pg_admin, _pg_url_for
from tests.helpers import FHIR_JSON, SERVICES, auth, body, bundle_for, submit


def _nulls(value, path="") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [found for name, item in value.items() for found in _nulls(item, f"{path}.{name}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _nulls(item, f"{path}[{i}]")]
    return []


# ----------------------------------------------------------------------------- urgency


def test_the_referral_schema_makes_a_missing_urgency_routine():
    data = body()
    del data["urgency"]
    assert ReferralIn().load(data)["urgency"] == "routine"
    with pytest.raises(ValidationError) as refused:
        ReferralIn().load(body(urgency="whenever"))
    assert "urgency" in refused.value.messages


def test_urgency_left_out_is_routine_on_both_doors(app, client, keys):
    data = body()
    del data["urgency"]
    sent = client.post("/referrals", json=data, headers=auth(keys["sender"], **{"Idempotency-Key": "no-urgency"}))
    assert sent.status_code == 201, sent.get_json()
    assert sent.get_json()["urgency"] == "routine"
    bundle = bundle_for(body())
    del bundle["entry"][0]["resource"]["priority"]
    by_fhir = client.post(
        "/fhir", json=bundle, headers=auth(keys["sender"], **{"Idempotency-Key": "b"}), content_type=FHIR_JSON
    )
    assert by_fhir.status_code == 200, by_fhir.get_json()
    with app.app_context():
        assert {r.urgency for r in db.session.query(Referral)} == {"routine"}


# ----------------------------------------------------------------------------- empty fields


def test_a_referral_leaves_empty_fields_out_never_null(client, keys):
    """No e-mail, no postcode, no status reason or outcome yet, not erased: none of them is sent."""
    sent = submit(client, keys)
    referral = sent.get_json()
    assert _nulls(referral) == []
    assert "email" not in referral["guardian"] and "postcode" not in referral["child"]
    assert "status_reason" not in referral and "erased_at" not in referral and referral["erased"] is False
    listed = client.get("/referrals", headers=auth(keys["receiver"])).get_json()
    assert len(listed["contents"]) == 1 and _nulls(listed) == []


# ----------------------------------------------------------------------------- language tags


@pytest.mark.parametrize(
    "tag, language",
    [
        ("es", "es"),
        ("ES", "es"),
        ("es-US", "es"),
        ("zh-Hant-TW", "zh"),
        ("haw", "haw"),
        ("pt-BR", "pt"),
        (" pt-BR ", None),
        ("español", None),
        ("e", None),
        ("es_US", None),
        ("es-", None),
        ("", None),
    ],
)
def test_a_language_tag_is_kept_as_its_primary_language(tag, language):
    assert primary_language(tag) == language


def test_the_language_filter_takes_a_bcp47_tag():
    assert ServiceListArgs().load({"language": ["es-US,pt-BR"]})["language"] == ["es", "pt"]
    with pytest.raises(ValidationError) as refused:
        ServiceListArgs().load({"language": ["español"]})
    assert refused.value.messages["language"] == {0: [LANGUAGE_MESSAGE]}


def test_es_us_finds_what_es_finds_on_services_and_referrals_keep_es(app, client, keys):
    service = {k: v for k, v in SERVICES["Help Me Grow Connecticut"].items() if k != "sources"}
    spanish = [{"id": str(uuid.uuid4()), "name": "Spanish", "code": "es"}]
    with app.app_context():
        curation.save_service(
            db.session, ServiceIn().load({**service, "languages": spanish, "accepts_referrals": True})
        )
        db.session.commit()
    es = client.get("/services?language=es&per_page=100").get_json()
    es_us = client.get("/services?language=es-US&per_page=100").get_json()
    assert es_us["total_items"] == es["total_items"] > 0
    assert [s["id"] for s in es_us["contents"]] == [s["id"] for s in es["contents"]]
    data = body()
    data["guardian"]["preferred_language"] = "es-US"
    assert submit(client, keys, **data).get_json()["guardian"]["preferred_language"] == "es"
    bundle = bundle_for(data)
    by_fhir = client.post(
        "/fhir", json=bundle, headers=auth(keys["sender"], **{"Idempotency-Key": "b"}), content_type=FHIR_JSON
    )
    assert by_fhir.status_code == 200
    with app.app_context():
        assert {r.guardian_preferred_language for r in db.session.query(Referral)} == {"es"}


# ----------------------------------------------------------------------------- the child's age


def test_a_child_older_than_the_bound_is_refused_with_the_reason(app, client, keys):
    old = dict(body()["child"], birth_date="1900-01-01")
    refused = submit(client, keys, child=old)
    assert refused.status_code == 422
    assert "older than 26 years" in refused.get_json()["message"]
    assert refused.get_json()["errors"]["child"]["birth_date"], refused.get_json()
    by_fhir = client.post(
        "/fhir",
        json=bundle_for(body(child=old)),
        headers=auth(keys["sender"], **{"Idempotency-Key": "b"}),
        content_type=FHIR_JSON,
    )
    assert by_fhir.status_code == 422 and "older than 26 years" in by_fhir.get_data(as_text=True)
    # Help Me Grow Connecticut states no age range: within the bound is accepted.
    young_adult = dict(old, birth_date=f"{date.today().year - 25}-01-01")
    assert submit(client, keys, child=young_adult).status_code == 201


def test_the_age_bound_is_a_setting(sqlite_templates):
    url, drop = sqlite_templates.new_database(seed=False)
    settings = config.TestConfig(url)
    settings.REFERRAL_MAX_AGE_YEARS = 18
    create_app(settings)
    assert referral_rules.settings["max_age_years"] == 18
    create_app(config.TestConfig(url))
    assert referral_rules.settings["max_age_years"] == 26
    drop()


# ----------------------------------------------------------------------------- CORS


def test_a_browser_may_send_and_read_x_request_id(client):
    preflight = client.options(
        "/services",
        headers={
            "Origin": "https://partner.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-Request-ID",
        },
    )
    assert "x-request-id" in preflight.headers.get("Access-Control-Allow-Headers", "").lower()
    answer = client.get("/services", headers={"Origin": "https://partner.example", "X-Request-ID": "abc-123"})
    exposed = [h.strip().lower() for h in answer.headers["Access-Control-Expose-Headers"].split(",")]
    assert "x-request-id" in exposed and answer.headers["X-Request-ID"] == "abc-123"
    assert "link" not in exposed  # no response sends a Link header


# ----------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("name", ["", "   "])
def test_a_client_needs_a_name(runner, name):
    result = runner.invoke(args=["clients", "create", "--name", name, "--scopes", "referrals:submit"])
    assert result.exit_code != 0 and "Give the client a name" in result.output
    assert "occh_" not in result.output


@pytest.fixture
def bare_app(engine, tmp_path, request):
    """The app on a database nobody has migrated."""
    if engine == "sqlite":
        yield create_app(config.TestConfig(f"sqlite:///{tmp_path / 'bare.db'}"))
        return
    request.getfixturevalue("pg_templates")
    name = f"occh_bare_{uuid.uuid4().hex[:8]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    application = create_app(config.TestConfig(_pg_url_for(name)))
    yield application
    with application.app_context():
        db.engine.dispose()
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(
    "command",
    [
        ["clients", "create", "--name", "School nurse", "--scopes", "referrals:submit"],
        ["clients", "list"],
        ["directory", "stale"],
        ["seed"],
    ],
)
def test_the_cli_on_a_database_without_tables_says_to_migrate(bare_app, command):
    result = bare_app.test_cli_runner().invoke(args=command)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: The database has no tables yet: run `flask db upgrade` first (then `flask seed` for the directory)."
    ]
