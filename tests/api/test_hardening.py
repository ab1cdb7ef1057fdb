"""Hostile input and abuse: request limits, security headers, rate limits, readiness."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import uuid

import pytest
from flask_migrate import stamp
from sqlalchemy import func, select

from api import create_app
from api.config import TestConfig as AppTestConfig
from api.extensions import db
from core import clients
from models import Referral
from tests.conftest import accept_referrals
from tests.helpers import auth, body

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def make_keys(app, *names: str) -> dict[str, str]:
    """Keys of partners that submit referrals; Help Me Grow Connecticut takes them."""
    with app.app_context():
        accept_referrals(db.session)
        made = {name: clients.create_client(db.session, f"Agency {name}", ["referrals:submit"], []) for name in names}
        db.session.commit()
        return {name: new.key for name, new in made.items()}


def referral_count(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Referral))
        db.session.remove()
        return count


def assert_envelope(response, status: int, error: str) -> None:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert data["code"] == status and data["error"] == error and data["message"]
    assert int(response.headers["Content-Length"]) == len(response.data)


@pytest.fixture
def another_app(app):
    """Make more apps on the test's database, with settings of their own; dispose them after."""
    made = []

    def make(**settings):
        config = AppTestConfig(app.config["SQLALCHEMY_DATABASE_URI"])
        for name, value in settings.items():
            setattr(config, name, value)
        made.append(create_app(config))
        return made[-1]

    yield make
    for application in made:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


# Request limits ---------------------------------------------------------------------------


def test_an_oversized_body_is_a_413_and_writes_nothing(app, client):
    key = make_keys(app, "sender")["sender"]
    padded = body(reason="x" * (app.config["MAX_BODY_BYTES"] + 1))
    response = client.post("/referrals", json=padded, headers=auth(key, **{"Idempotency-Key": str(uuid.uuid4())}))
    assert_envelope(response, 413, "payload_too_large")
    assert "x" * 20 not in response.get_data(as_text=True)
    assert referral_count(app) == 0


def test_a_streamed_body_is_measured_too(app, client):
    """A chunked body has no Content-Length: it is read up to the limit, and refused past it."""
    key = make_keys(app, "sender")["sender"]
    limit = app.config["MAX_BODY_BYTES"]
    padded = json.dumps(body(reason="x" * limit)).encode()
    response = client.post(
        "/referrals",
        input_stream=io.BytesIO(padded),
        headers={
            **auth(key, **{"Idempotency-Key": str(uuid.uuid4())}),
            "Transfer-Encoding": "chunked",
            "Content-Type": "application/json",
        },
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn and the dev server set it
    )
    assert_envelope(response, 413, "payload_too_large")
    assert referral_count(app) == 0
    fits = json.dumps(body()).encode()
    response = client.post(
        "/referrals",
        input_stream=io.BytesIO(fits),
        headers={
            **auth(key, **{"Idempotency-Key": str(uuid.uuid4())}),
            "Transfer-Encoding": "chunked",
            "Content-Type": "application/json",
        },
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 201, response.get_json()


def test_a_body_that_is_not_json_is_a_415_and_writes_nothing(app, client):
    key = make_keys(app, "sender")["sender"]
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = auth(key, **{"Idempotency-Key": str(uuid.uuid4())})
        if content_type:
            headers["Content-Type"] = content_type
        response = client.post("/referrals", data=json.dumps(body()), headers=headers)
        assert_envelope(response, 415, "unsupported_media_type")
    assert referral_count(app) == 0
    # JSON with a charset, and a +json type, are JSON.
    for content_type in ("application/json; charset=utf-8", "application/fhir+json"):
        response = client.post(
            "/referrals",
            data=json.dumps(body()),
            headers={**auth(key, **{"Idempotency-Key": str(uuid.uuid4())}), "Content-Type": content_type},
        )
        assert response.status_code == 201, response.get_json()
    assert referral_count(app) == 2


def test_unknown_body_fields_and_malformed_json_are_refused_and_write_nothing(app, client):
    key = make_keys(app, "sender")["sender"]
    headers = auth(key, **{"Idempotency-Key": str(uuid.uuid4())})
    response = client.post("/referrals", json={**body(), "priority": "high"}, headers=headers)
    assert_envelope(response, 422, "validation_error")
    assert "priority" in response.get_json()["errors"]["json"]
    nested = body()
    nested["child"]["nickname"] = "Z"
    response = client.post("/referrals", json=nested, headers=auth(key, **{"Idempotency-Key": str(uuid.uuid4())}))
    assert "nickname" in response.get_json()["errors"]["json"]["child"]
    response = client.post("/referrals", data="{not json", headers={**headers, "Content-Type": "application/json"})
    assert_envelope(response, 400, "invalid_json")
    assert referral_count(app) == 0


def test_the_body_limit_is_configurable(app, another_app):
    small = another_app(MAX_BODY_BYTES=100)
    key = make_keys(app, "sender")["sender"]
    response = small.test_client().post(
        "/referrals", json=body(), headers=auth(key, **{"Idempotency-Key": str(uuid.uuid4())})
    )
    assert_envelope(response, 413, "payload_too_large")
    assert "100 bytes" in response.get_json()["message"]
    assert referral_count(app) == 0


def test_an_overlong_query_string_is_a_414(app, client):
    limit = app.config["MAX_QUERY_BYTES"]
    response = client.get("/services?search=" + "a" * limit)
    assert_envelope(response, 414, "uri_too_long")
    assert "aaaa" not in response.get_data(as_text=True)
    assert client.get("/services?search=" + "a" * 150).status_code == 200


# Security headers -------------------------------------------------------------------------


def assert_security_headers(response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in response.headers


def test_security_headers_on_answers_and_errors(client):
    ok = client.get("/services")
    assert ok.status_code == 200
    assert ok.headers["Content-Security-Policy"].startswith("default-src 'none'")
    missing = client.get(f"/services/{uuid.uuid4()}")
    assert missing.status_code == 404
    invalid = client.get("/services?per_page=0")
    assert invalid.status_code == 422
    not_allowed = client.delete("/services")
    assert_envelope(not_allowed, 405, "method_not_allowed")
    for response in (ok, missing, invalid, not_allowed, client.get("/openapi.json"), client.get("/healthz")):
        assert_security_headers(response)


def test_the_docs_page_gets_a_policy_that_lets_swagger_ui_run(reader):
    client = reader  # only reads: the module's shared database
    page = client.get("/docs")
    assert page.status_code == 200
    assert_security_headers(page)
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    html = page.get_data(as_text=True)
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert inline, "the page configures Swagger UI inline"
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]
    assert "'self'" in policy["script-src"] and "'unsafe-inline'" not in policy["script-src"]
    assert "'self'" in policy["style-src"] and "'self'" in policy["connect-src"]
    assert "validator.swagger.io" not in html and "http" not in policy.get("img-src", "")
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and asset.headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_only_over_tls(reader):
    client = reader  # only reads: the module's shared database
    assert "Strict-Transport-Security" not in client.get("/").headers
    secure = client.get("/", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_forwarded_proto_counts_only_behind_a_trusted_proxy(client, another_app):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    assert "Strict-Transport-Security" not in client.get("/", headers=forwarded).headers
    proxied = another_app(PROXY_HOPS=1).test_client()
    assert "Strict-Transport-Security" in proxied.get("/", headers=forwarded).headers
    assert "Strict-Transport-Security" not in proxied.get("/").headers


# Rate limits ------------------------------------------------------------------------------


def test_public_reads_are_limited_per_address(another_app):
    limited = another_app(RATELIMIT_ENABLED=True, RATELIMIT_PUBLIC="3 per minute")
    client = limited.test_client()
    for _ in range(3):
        assert client.get("/programs").status_code == 200
    refused = client.get("/services")  # one budget for every public read
    assert_envelope(refused, 429, "too_many_requests")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert_security_headers(refused)
    # Another address has a budget of its own; the probes are never limited.
    assert client.get("/programs", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_keyed_routes_are_limited_per_key(app, another_app):
    keys = make_keys(app, "first", "second")
    limited = another_app(RATELIMIT_ENABLED=True, RATELIMIT_KEYED="2 per minute", RATELIMIT_PUBLIC="1000 per minute")
    client = limited.test_client()
    for _ in range(2):
        assert client.get("/referrals", headers=auth(keys["first"])).status_code == 200
    refused = client.post(
        "/referrals", json=body(), headers=auth(keys["first"], **{"Idempotency-Key": str(uuid.uuid4())})
    )
    assert_envelope(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) >= 1
    assert keys["first"] not in refused.get_data(as_text=True)
    assert referral_count(app) == 0, "a refused request writes nothing"
    # The same address with another key has its own budget; public reads are not spent.
    assert client.get("/referrals", headers=auth(keys["second"])).status_code == 200
    assert client.get("/programs").status_code == 200


def test_requests_with_no_valid_key_are_limited_per_address(another_app):
    limited = another_app(RATELIMIT_ENABLED=True, RATELIMIT_KEYED="2 per minute")
    client = limited.test_client()
    for attempt in range(2):
        assert client.get("/referrals", headers=auth(f"occh_{attempt:012d}_guess")).status_code == 401
    assert client.get("/referrals", headers=auth("occh_000000000009_guess")).status_code == 429


def test_a_redis_limit_is_shared_by_two_instances(app, another_app, redis_url):
    import redis

    prefix = f"occh-test-{uuid.uuid4().hex}"
    settings = {"RATELIMIT_ENABLED": True, "REDIS_URL": redis_url, "RATELIMIT_KEY_PREFIX": prefix}
    keys = make_keys(app, "sender")
    first = another_app(**settings, RATELIMIT_PUBLIC="4 per minute", RATELIMIT_KEYED="3 per minute").test_client()
    second = another_app(**settings, RATELIMIT_PUBLIC="4 per minute", RATELIMIT_KEYED="3 per minute").test_client()
    try:
        for client in (first, second, first, second):
            assert client.get("/programs").status_code == 200
        assert second.get("/programs").status_code == 429
        assert first.get("/programs").status_code == 429
        for client in (first, second, first):
            assert client.get("/webhooks", headers=auth(keys["sender"])).status_code == 200
        assert second.get("/webhooks", headers=auth(keys["sender"])).status_code == 429
        stored = redis.Redis.from_url(redis_url).keys(f"*{prefix}*")
        assert stored, "the counters live in Redis"
        assert not any(keys["sender"].encode() in name for name in stored), "no key in Redis"
    finally:
        connection = redis.Redis.from_url(redis_url)
        for name in connection.scan_iter(f"*{prefix}*"):
            connection.delete(name)


def test_an_unreachable_redis_never_fails_a_request(another_app):
    down = another_app(RATELIMIT_ENABLED=True, REDIS_URL="redis://127.0.0.1:1/0", RATELIMIT_PUBLIC="2 per minute")
    client = down.test_client()
    assert [client.get("/programs").status_code for _ in range(3)] == [200, 200, 429]


# OpenAPI ----------------------------------------------------------------------------------


def test_every_operation_documents_its_refusals(reader):
    client = reader  # only reads: the module's shared database
    spec = client.get("/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            codes = operation["responses"]
            assert "414" in codes, f"{method} {path}"
            if path not in ("/healthz", "/readyz"):
                assert "Retry-After" in codes["429"]["headers"], f"{method} {path}"
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(codes), f"{method} {path}"
            # No catch-all: every status is listed, and every error has its body.
            assert "default" not in codes and "500" in codes, f"{method} {path}"
            error_type = "application/fhir+json" if path.startswith("/fhir") else "application/json"
            for code, response in codes.items():
                if code >= "400":
                    assert list(response["content"]) == [error_type], f"{method} {path} {code}"


# Readiness --------------------------------------------------------------------------------


def test_ready_on_a_migrated_database(reader):
    client = reader  # only reads: the module's shared database
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_not_ready_when_the_schema_is_behind(app, client):
    with app.app_context():
        from alembic.script import ScriptDirectory

        script = ScriptDirectory(app.extensions["migrate"].directory)
        head = script.get_revision(script.get_current_head())
        stamp(revision=head.down_revision)
        db.session.remove()
    response = client.get("/readyz")
    assert_envelope(response, 503, "service_unavailable")
    assert response.get_json()["reason"] == "migrations_pending"
    assert client.get("/healthz").status_code == 200


def test_not_ready_when_the_database_is_unreachable(app, engine, tmp_path):
    url = (
        f"sqlite:///{tmp_path}/no/such/dir/occh.db"
        if engine == "sqlite"
        else "postgresql://postgres:secret-password@127.0.0.1:1/occh"
    )
    unreachable = create_app(AppTestConfig(url))
    response = unreachable.test_client().get("/readyz")
    assert_envelope(response, 503, "service_unavailable")
    data = response.get_json()
    assert data["reason"] == "database_unreachable"
    text = response.get_data(as_text=True)
    assert "secret" not in text and "127.0.0.1" not in text and str(tmp_path) not in text
