"""No lost update: concurrent moves of one referral against a real multi-threaded server, on
both engines. Exactly one move wins; the others are told why (412 stale If-Match, 409 the
lifecycle no longer allows it), and only the winner's event, audit entry and webhook exist."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from api.extensions import db
from models import AuditEntry, ReferralEvent, WebhookDelivery
from tests.helpers import body, one_engine

# Their receivers listen on loopback over http: allowed in these tests, refused by default.
pytestmark = pytest.mark.usefixtures("loopback_webhooks")

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {s["name"]: s for s in json.loads((ROOT / "seed_data" / "services.json").read_text())["services"]}
HMG_CT = SERVICES["Help Me Grow Connecticut"]["id"]
MOVES = 10


@pytest.fixture
def server(app):
    """The app behind werkzeug's threaded server on 127.0.0.1: one thread per request, as
    under gunicorn with threads."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


def call(base: str, method: str, path: str, key: str, payload=None, content_type="application/json", **headers):
    data = json.dumps(payload).encode() if payload is not None else None
    headers = {"Authorization": f"Bearer {key}", **({"Content-Type": content_type} if data else {}), **headers}
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def new_referral(base: str, keys) -> tuple[str, str]:
    status, headers, referral = call(
        base, "POST", "/referrals", keys["sender"], body(), **{"Idempotency-Key": str(uuid.uuid4())}
    )
    assert status == 201, referral
    return referral["id"], headers["ETag"]


def at_once(requests: list) -> list[tuple[int, dict, dict]]:
    """Send every request (a function of no arguments) from its own thread, released together."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)
    failures: list[BaseException] = []

    def run(index, send):
        try:
            barrier.wait(timeout=30)
            results[index] = send()
        except BaseException as exc:  # reported below: a thread's failure fails the test
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i, send)) for i, send in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert all(result is not None for result in results)
    return results


def recorded(app, referral_id: str) -> dict:
    with app.app_context():
        rid = uuid.UUID(referral_id)
        events = db.session.scalars(
            select(ReferralEvent).where(ReferralEvent.referral_id == rid).order_by(ReferralEvent.sequence)
        ).all()
        transitions = db.session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.referral_id == rid, AuditEntry.action == "transition")
        )
        outbox = db.session.scalar(select(func.count()).select_from(WebhookDelivery))
        return {
            "moves": [(e.from_status, e.to_status) for e in events if e.type == "referral.status_changed"],
            "transitions": transitions,
            "outbox": outbox,
        }


def subscribe(base: str, keys) -> None:
    """A webhook of the sender's (after the referral was made): each recorded move writes one outbox row."""
    status, _, _ = call(base, "POST", "/webhooks", keys["sender"], {"url": "http://127.0.0.1:9/hooks"})
    assert status == 201


def statuses(results) -> list[int]:
    return sorted(status for status, _, _ in results)


def test_ten_moves_with_the_same_if_match_one_wins_the_rest_are_412(app, keys, server):
    referral_id, etag = new_referral(server, keys)
    subscribe(server, keys)
    assert etag == '"v1"'
    # Half accept and half reject, all from the version they read: only one may land.
    moves = [
        {"status": "accepted"} if i % 2 else {"status": "rejected", "reason": "Outside our area."} for i in range(MOVES)
    ]
    results = at_once(
        [
            (
                lambda move=move: call(
                    server, "POST", f"/referrals/{referral_id}/status", keys["receiver"], move, **{"If-Match": etag}
                )
            )
            for move in moves
        ]
    )
    assert statuses(results) == [200] + [412] * (MOVES - 1), [(s, b) for s, _, b in results]
    winner = next(b for s, _, b in results if s == 200)
    assert next(h for s, h, _ in results if s == 200)["ETag"] == '"v2"'
    for status, _, answer in results:
        if status == 412:
            assert answer["error"] == "precondition_failed"
    _, _, now = call(server, "GET", f"/referrals/{referral_id}", keys["sender"])
    assert now["status"] == winner["status"] and now["version"] == 2
    assert recorded(app, referral_id) == {"moves": [("requested", winner["status"])], "transitions": 1, "outbox": 1}


def test_ten_identical_moves_without_if_match_one_wins_the_rest_are_409(app, keys, server):
    referral_id, _ = new_referral(server, keys)
    subscribe(server, keys)
    results = at_once(
        [
            lambda: call(server, "POST", f"/referrals/{referral_id}/status", keys["receiver"], {"status": "accepted"})
            for _ in range(MOVES)
        ]
    )
    assert statuses(results) == [200] + [409] * (MOVES - 1), [(s, b) for s, _, b in results]
    for status, _, answer in results:
        if status == 409:
            assert answer["error"] == "conflict"
            assert "accepted" not in answer["errors"]["allowed"]
    _, headers, now = call(server, "GET", f"/referrals/{referral_id}", keys["sender"])
    assert now["status"] == "accepted" and headers["ETag"] == '"v2"'
    assert recorded(app, referral_id) == {"moves": [("requested", "accepted")], "transitions": 1, "outbox": 1}


def test_ten_fhir_patches_with_the_same_if_match_one_wins(app, keys, server):
    referral_id, _ = new_referral(server, keys)
    patch = [{"op": "replace", "path": "/status", "value": "accepted"}]
    results = at_once(
        [
            lambda: call(
                server,
                "PATCH",
                f"/fhir/Task/{referral_id}",
                keys["receiver"],
                patch,
                content_type="application/json-patch+json",
                **{"If-Match": 'W/"1"'},
            )
            for _ in range(MOVES)
        ]
    )
    assert statuses(results) == [200] + [412] * (MOVES - 1), [(s, b) for s, _, b in results]
    for status, headers, answer in results:
        assert answer["resourceType"] == ("Task" if status == 200 else "OperationOutcome")
        if status == 200:
            assert headers["ETag"] == 'W/"2"' and answer["status"] == "accepted"
    assert recorded(app, referral_id)["moves"] == [("requested", "accepted")]


@pytest.mark.parametrize(
    "header",
    ["v1", "1", '"v1', "W/v1", "garbage", '"v1" junk', 'W/ "v1"', '"v1", "v2"'],
)
@one_engine
def test_an_if_match_that_is_not_an_entity_tag_is_a_400_and_changes_nothing(app, keys, server, header):
    referral_id, _ = new_referral(server, keys)
    status, _, answer = call(
        server,
        "POST",
        f"/referrals/{referral_id}/status",
        keys["receiver"],
        {"status": "accepted"},
        **{"If-Match": header},
    )
    assert status == 400, answer
    assert answer["error"] == "bad_request" and "If-Match" in answer["message"]
    assert recorded(app, referral_id)["moves"] == []
    _, _, now = call(server, "GET", f"/referrals/{referral_id}", keys["sender"])
    assert now["status"] == "requested"


def test_well_formed_if_match_forms(app, keys, server):
    """A weak `W/"v1"` and `*` are accepted on the REST route; another well-formed entity tag
    names no version of the referral and is a 412."""
    referral_id, _ = new_referral(server, keys)
    path = f"/referrals/{referral_id}/status"
    assert call(server, "POST", path, keys["receiver"], {"status": "accepted"}, **{"If-Match": '"abc"'})[0] == 412
    assert call(server, "POST", path, keys["receiver"], {"status": "accepted"}, **{"If-Match": 'W/"v1"'})[0] == 200
    assert call(server, "POST", path, keys["receiver"], {"status": "in-progress"}, **{"If-Match": "*"})[0] == 200
    assert call(server, "POST", path, keys["receiver"], {"status": "completed"}, **{"If-Match": ' "v3" '})[0] == 200
    assert recorded(app, referral_id)["moves"] == [
        ("requested", "accepted"),
        ("accepted", "in-progress"),
        ("in-progress", "completed"),
    ]
