"""Closed-loop referrals between a partner agency and a receiving program."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from api.extensions import db
from core import clients, curation, webhooks
from models import AuditEntry, IdempotencyKey, utcnow
from schemas.inputs import ServiceIn
from tests.helpers import (
    CHILD_NAME,
    FAMILY_NAME,
    HMG_NATIONAL,
    SERVICES,
    auth,
    body,
    count_referrals,
    deliver,
    move,
    one_engine,
    submit,
)

# ----------------------------------------------------------------------------- submitting


def test_partner_submits_a_referral(client, keys):
    response = submit(client, keys)
    assert response.status_code == 201
    referral = response.get_json()
    assert referral["status"] == "requested"
    assert referral["child"]["given_name"] == CHILD_NAME
    assert response.headers["Location"] == f"/referrals/{referral['id']}"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["ETag"] == '"v1"'
    fetched = client.get(response.headers["Location"], headers=auth(keys["receiver"]))
    assert fetched.status_code == 200 and fetched.get_json()["id"] == referral["id"]


def test_retry_with_the_same_key_returns_the_same_referral(app, client, keys):
    first = submit(client, keys, idem="visit-42")
    again = submit(client, keys, idem="visit-42")
    assert again.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    assert count_referrals(app) == 1
    conflict = submit(client, keys, idem="visit-42", reason="Something else entirely.")
    assert conflict.status_code == 409
    assert count_referrals(app) == 1


def test_idempotency_key_is_required(app, client, keys):
    response = client.post("/referrals", json=body(), headers=auth(keys["sender"]))
    assert response.status_code == 428
    assert count_referrals(app) == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"colour": "blue"}, "colour"),
        ({"urgency": "whenever"}, "urgency"),
        ({"reason": "x" * 2001}, "reason"),
        ({"service_id": "not-a-uuid"}, "service_id"),
        ({"child": {"given_name": "A", "family_name": "B", "birth_date": "2999-01-01", "town": "Hartford"}}, "child"),
        ({"child": {"given_name": "A", "family_name": "B", "birth_date": "2020-01-01"}}, "child"),
        (
            {"child": {"given_name": "A", "family_name": "B", "birth_date": "2020-01-01", "town": "X", "ssn": "1"}},
            "child",
        ),
        (
            {
                "consent": {
                    "obtained": False,
                    "obtained_by": "A",
                    "relationship": "mother",
                    "obtained_at": "2026-11-20T15:00:00Z",
                    "method": "verbal",
                }
            },
            "consent",
        ),
        (
            {
                "guardian": {
                    "name": "A",
                    "relationship": "mother",
                    "email": "a@example.org",
                    "contact_preference": "text",
                    "may_leave_message": False,
                }
            },
            "guardian",
        ),
    ],
)
@one_engine
def test_invalid_referral_is_a_422_naming_the_field_and_writes_nothing(app, client, keys, change, field):
    response = submit(client, keys, **change)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]
    assert CHILD_NAME not in response.get_data(as_text=True)
    assert count_referrals(app) == 0


def test_service_must_take_referrals(app, client, keys):
    response = submit(client, keys, service_id=HMG_NATIONAL)
    assert response.status_code == 422
    assert "does not accept referrals" in response.get_json()["message"]
    unknown = submit(client, keys, service_id=str(uuid.uuid4()))
    assert unknown.status_code == 422
    assert count_referrals(app) == 0


def test_child_outside_the_age_range_is_refused_with_a_reason(app, client, keys):
    service = {k: v for k, v in SERVICES["Help Me Grow Connecticut"].items() if k != "sources"}
    with app.app_context():
        curation.save_service(
            db.session, ServiceIn().load({**service, "minimum_age": 0, "maximum_age": 5, "accepts_referrals": True})
        )
        db.session.commit()
    teen = {
        "given_name": "A",
        "family_name": "B",
        "birth_date": (date.today() - timedelta(days=365 * 12)).isoformat(),
        "town": "Hartford",
    }
    response = submit(client, keys, child=teen)
    assert response.status_code == 422
    assert "maximum age (5)" in response.get_json()["message"]
    assert submit(client, keys).status_code == 201


# ----------------------------------------------------------------------------- lifecycle


def test_program_moves_the_referral_and_the_sender_sees_every_change(client, keys):
    referral_id = submit(client, keys).get_json()["id"]
    steps = [
        ("accepted", {}),
        ("in-progress", {}),
        ("on-hold", {"reason": "Family travelling until December."}),
        ("in-progress", {}),
        ("completed", {"outcome": "Family connected to Birth to Three."}),
    ]
    for status, extra in steps:
        response = move(client, keys, referral_id, "receiver", status, **extra)
        assert response.status_code == 200, response.get_json()
        seen = client.get(f"/referrals/{referral_id}", headers=auth(keys["sender"])).get_json()
        assert seen["status"] == status
    assert seen["outcome"] == "Family connected to Birth to Three."
    events = client.get(f"/referrals/{referral_id}/events", headers=auth(keys["sender"])).get_json()
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, "requested"),
        ("requested", "accepted"),
        ("accepted", "in-progress"),
        ("in-progress", "on-hold"),
        ("on-hold", "in-progress"),
        ("in-progress", "completed"),
    ]
    assert events[0]["actor"]["name"] == "Hartford Pediatrics"
    assert events[3]["actor"]["name"] == "Help Me Grow staff"
    assert events[3]["reason"] == "Family travelling until December."


def test_illegal_moves_are_409s_listing_the_allowed_states(client, keys):
    referral_id = submit(client, keys).get_json()["id"]
    response = move(client, keys, referral_id, "receiver", "completed")
    assert response.status_code == 409
    assert response.get_json()["errors"]["allowed"] == ["accepted", "rejected"]
    assert move(client, keys, referral_id, "receiver", "rejected", reason="Outside our area.").status_code == 200
    closed = move(client, keys, referral_id, "receiver", "accepted")
    assert closed.status_code == 409 and closed.get_json()["errors"]["allowed"] == []


def test_who_may_make_which_move(client, keys):
    referral_id = submit(client, keys).get_json()["id"]
    assert move(client, keys, referral_id, "sender", "accepted").status_code == 403
    assert move(client, keys, referral_id, "receiver", "cancelled", reason="x").status_code == 403
    assert move(client, keys, referral_id, "sender", "cancelled").status_code == 422, "a reason is required"
    assert move(client, keys, referral_id, "sender", "cancelled", reason="Family moved away.").status_code == 200


def test_entered_in_error_by_the_sender_from_an_open_state(client, keys):
    referral_id = submit(client, keys).get_json()["id"]
    assert move(client, keys, referral_id, "receiver", "accepted").status_code == 200
    response = move(client, keys, referral_id, "sender", "entered-in-error", reason="Wrong child.")
    assert response.status_code == 200 and response.get_json()["status"] == "entered-in-error"


def test_stale_update_is_a_412(client, keys):
    created = submit(client, keys)
    referral_id, etag = created.get_json()["id"], created.headers["ETag"]
    first = move(client, keys, referral_id, "receiver", "accepted", headers={"If-Match": etag})
    assert first.status_code == 200 and first.headers["ETag"] == '"v2"'
    stale = move(client, keys, referral_id, "receiver", "in-progress", headers={"If-Match": etag})
    assert stale.status_code == 412
    assert client.get(f"/referrals/{referral_id}", headers=auth(keys["sender"])).get_json()["status"] == "accepted"
    assert move(client, keys, referral_id, "receiver", "in-progress", headers={"If-Match": '"v2"'}).status_code == 200


# ----------------------------------------------------------------------------- who sees what


def test_a_third_client_gets_404_everywhere_and_sees_nothing_in_lists(client, keys):
    referral_id = submit(client, keys).get_json()["id"]
    for method, url, payload in [
        ("get", f"/referrals/{referral_id}", None),
        ("get", f"/referrals/{referral_id}/events", None),
        ("post", f"/referrals/{referral_id}/status", {"status": "cancelled", "reason": "x"}),
    ]:
        response = getattr(client, method)(url, json=payload, headers=auth(keys["stranger"]))
        assert response.status_code == 404, url
    assert client.get("/referrals", headers=auth(keys["stranger"])).get_json()["total_items"] == 0
    assert client.get("/referrals", headers=auth(keys["sender"])).get_json()["total_items"] == 1
    assert client.get("/referrals", headers=auth(keys["receiver"])).get_json()["total_items"] == 1


ROUTES = [
    ("get", "/referrals"),
    ("post", "/referrals"),
    ("get", "/referrals/{id}"),
    ("post", "/referrals/{id}/status"),
    ("get", "/referrals/{id}/events"),
    ("post", "/webhooks"),
    ("get", "/webhooks"),
    ("post", "/webhooks/{id}/rotate-secret"),
]


@pytest.mark.parametrize("method, route", ROUTES)
def test_every_referral_route_needs_a_key_with_the_scope(client, keys, method, route):
    url = route.format(id=uuid.uuid4())
    assert getattr(client, method)(url, json={}).status_code == 401
    wrong = getattr(client, method)(url, json={}, headers=auth("occh_deadbeef0000_not-a-real-key"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    assert getattr(client, method)(url, json={}, headers={"Authorization": "Basic abc"}).status_code == 401
    assert getattr(client, method)(url, json={}, headers=auth(keys["admin"])).status_code == 403


def test_a_revoked_key_stops_working(app, client, keys):
    assert client.get("/referrals", headers=auth(keys["sender"])).status_code == 200
    with app.app_context():
        client_id = next(c.id for c in clients.list_clients(db.session) if c.name == "Hartford Pediatrics")
        clients.revoke_client(db.session, client_id)
        db.session.commit()
    assert client.get("/referrals", headers=auth(keys["sender"])).status_code == 401


def test_polling_filters(client, keys):
    first = submit(client, keys).get_json()
    second = submit(client, keys).get_json()
    move(client, keys, second["id"], "receiver", "accepted")
    accepted = client.get("/referrals?status=accepted", headers=auth(keys["sender"])).get_json()
    assert [r["id"] for r in accepted["contents"]] == [second["id"]]
    since = client.get("/referrals", query_string={"updated_since": first["updated_at"]}, headers=auth(keys["sender"]))
    assert [r["id"] for r in since.get_json()["contents"]] == [second["id"]]
    by_service = client.get(f"/referrals?service_id={HMG_NATIONAL}", headers=auth(keys["sender"])).get_json()
    assert by_service["total_items"] == 0


def test_every_read_is_audited(app, client, keys):
    referral_id = submit(client, keys).get_json()["id"]
    client.get(f"/referrals/{referral_id}", headers=auth(keys["receiver"]))
    client.get("/referrals", headers=auth(keys["sender"]))
    client.get(f"/referrals/{referral_id}/events", headers=auth(keys["sender"]))
    with app.app_context():
        actions = sorted(
            db.session.scalars(select(AuditEntry.action).where(AuditEntry.referral_id == uuid.UUID(referral_id)))
        )
    assert actions == ["create", "list", "read", "read_events"]


@one_engine
@pytest.mark.parametrize(
    "private, preflight, public",
    [("/referrals", "/referrals", "/services"), ("/fhir/Task", "/fhir", "/fhir/HealthcareService")],
    ids=["rest", "fhir"],
)
def test_referral_data_goes_only_to_configured_origins_and_the_directory_to_any(
    client, keys, private, preflight, public
):
    """CORS_ORIGINS is empty in tests: referrals, through REST or as FHIR, go to no other origin
    and a preflight for them is not allowed; the directory is public to any origin."""
    evil = {"Origin": "https://evil.example"}
    listed = client.get(private, headers=auth(keys["sender"], **evil))
    assert listed.status_code == 200 and "Access-Control-Allow-Origin" not in listed.headers
    asked = client.options(preflight, headers={**evil, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in asked.headers
    assert client.get(public, headers=evil).headers["Access-Control-Allow-Origin"] == "*"


# ----------------------------------------------------------------------------- webhooks


def test_signed_id_only_webhooks_reach_a_real_receiver(app, client, keys, receiver):
    created = client.post("/webhooks", json={"url": receiver.url}, headers=auth(keys["sender"]))
    assert created.status_code == 201
    secret = created.get_json()["secret"]
    referral_id = submit(client, keys).get_json()["id"]
    move(client, keys, referral_id, "receiver", "accepted")
    assert deliver(app) == 2
    payloads = []
    for headers, raw in receiver.received:
        stamp, signature = dict(part.split("=", 1) for part in headers["x-occh-signature"].split(",")).values()
        assert webhooks.sign(secret, int(stamp), raw) == headers["x-occh-signature"]
        payloads.append(json.loads(raw))
        assert CHILD_NAME.encode() not in raw and FAMILY_NAME.encode() not in raw
    assert [(p["event_type"], p["status"]) for p in payloads] == [
        ("referral.created", "requested"),
        ("referral.status_changed", "accepted"),
    ]
    assert set(payloads[0]) == {"event_id", "event_type", "referral_id", "status", "occurred_at"}
    assert deliver(app) == 0, "delivered events are not sent again"


def test_a_receiver_that_is_down_gets_the_event_later(app, client, keys, receiver):
    hook = client.post("/webhooks", json={"url": receiver.url}, headers=auth(keys["receiver"])).get_json()
    receiver.down = True
    submit(client, keys)
    assert deliver(app) == 1 and receiver.received == []
    assert deliver(app) == 0, "not retried before its backoff"
    receiver.down = False
    assert deliver(app, now=utcnow() + timedelta(seconds=webhooks.backoff(1) + 1)) == 1
    assert len(receiver.received) == 1
    log = client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth(keys["receiver"])).get_json()["contents"]
    assert log[0]["status"] == "delivered"
    assert [a["status_code"] for a in log[0]["attempt_log"]] == [503, 204]


def test_webhooks_follow_visibility(app, client, keys, receiver):
    client.post("/webhooks", json={"url": receiver.url}, headers=auth(keys["stranger"]))
    submit(client, keys)
    assert deliver(app) == 0 and receiver.received == []


def test_webhook_cli_runs_once(app, client, keys, receiver):
    client.post("/webhooks", json={"url": receiver.url}, headers=auth(keys["sender"]))
    submit(client, keys)
    result = app.test_cli_runner().invoke(args=["webhooks", "run", "--once"])
    assert result.exit_code == 0 and "Attempted 1" in result.output
    assert len(receiver.received) == 1


# ----------------------------------------------------------------------------- privacy & durability


def test_no_personal_data_in_logs(app, client, keys, caplog):
    caplog.set_level(logging.DEBUG)
    referral_id = submit(client, keys).get_json()["id"]
    submit(
        client,
        keys,
        child={"given_name": CHILD_NAME, "family_name": FAMILY_NAME, "birth_date": "2999-01-01", "town": "Hartford"},
    )
    move(client, keys, referral_id, "receiver", "on-hold", reason=f"{CHILD_NAME} is unwell")
    client.get(f"/referrals/{referral_id}", headers=auth(keys["sender"]))
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (CHILD_NAME, FAMILY_NAME, "860-555-0142", keys["sender"]):
        assert secret not in text


def test_concurrent_retries_with_one_key_make_one_referral(app, keys):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import urllib.request

    url = f"http://127.0.0.1:{server.server_port}/referrals"
    payload = json.dumps(body()).encode()
    results: list[tuple[int, str]] = []

    def post():
        request = urllib.request.Request(
            url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": "same-key",
                "Authorization": f"Bearer {keys['sender']}",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            results.append((reply.status, json.loads(reply.read())["id"]))

    threads = [threading.Thread(target=post) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.shutdown()
    assert len(results) == 12
    assert {status for status, _ in results} == {201}
    assert len({rid for _, rid in results}) == 1
    assert count_referrals(app) == 1


def test_a_failure_mid_write_loses_nothing_and_a_retry_succeeds(app, client, keys, monkeypatch):
    real = webhooks.enqueue
    calls = {"n": 0}

    def failing_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated crash between the referral and its outbox row")
        return real(*args, **kwargs)

    monkeypatch.setattr(webhooks, "enqueue", failing_once)
    assert submit(client, keys, idem="retry-me").status_code == 500
    assert count_referrals(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    retried = submit(client, keys, idem="retry-me")
    assert retried.status_code == 201
    assert count_referrals(app) == 1


def test_clients_cli_prints_the_key_once_and_stores_a_hash(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["clients", "create", "--name", "School nurse", "--scopes", "referrals:submit"])
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("occh_")
    listing = runner.invoke(args=["clients", "list"]).output
    assert "School nurse" in listing and key not in listing
    client = app.test_client()
    assert client.get("/referrals", headers=auth(key)).status_code == 200
    client_id = next(line.split()[0] for line in listing.splitlines() if "School nurse" in line)
    assert runner.invoke(args=["clients", "revoke", client_id]).exit_code == 0
    assert client.get("/referrals", headers=auth(key)).status_code == 401
    bad = runner.invoke(args=["clients", "create", "--name", "X", "--scopes", "referrals:manage"])
    assert bad.exit_code != 0 and "--program" in bad.output
