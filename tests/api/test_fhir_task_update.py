"""FHIR Task update: PUT and JSON Patch on /fhir/Task/{id} move a referral exactly as
POST /referrals/{id}/status does (lifecycle, sides, If-Match, webhooks, audit), on both engines.
Every Task and OperationOutcome answered is parsed with fhir.resources (R4B)."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select

from api import config as api_config
from api import create_app
from api.extensions import db
from models import AuditEntry, ReferralEvent, WebhookDelivery
from tests.helpers import FHIR_JSON, auth, body, one_engine

# Its webhook receiver listens on loopback over http: allowed here, refused by default.
pytestmark = pytest.mark.usefixtures("loopback_webhooks")

PATCH_JSON = "application/json-patch+json"


def parse(resource: dict):
    """The resource as its fhir.resources R4B model (raises when it is not valid FHIR)."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.fixture
def referral_id(client, keys) -> str:
    created = client.post(
        "/referrals", json=body(), headers=auth(keys["sender"], **{"Idempotency-Key": str(uuid.uuid4())})
    )
    assert created.status_code == 201
    return created.get_json()["id"]


def read_task(client, key, referral_id) -> tuple[dict, str]:
    response = client.get(f"/fhir/Task/{referral_id}", headers=auth(key))
    assert response.status_code == 200
    return response.get_json(), response.headers["ETag"]


def put(client, key, referral_id, task, **headers):
    return client.put(
        f"/fhir/Task/{referral_id}", data=json.dumps(task), headers=auth(key, **headers), content_type=FHIR_JSON
    )


def patch(client, key, referral_id, operations, content_type=PATCH_JSON, **headers):
    return client.patch(
        f"/fhir/Task/{referral_id}",
        data=json.dumps(operations),
        headers=auth(key, **headers),
        content_type=content_type,
    )


def answered(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    resource = response.get_json()
    parse(resource)
    assert resource["resourceType"] == ("Task" if status == 200 else "OperationOutcome")
    return resource


def expressions(outcome: dict) -> set[str]:
    return {e for issue in outcome["issue"] for e in issue.get("expression", [])}


def rest(client, keys, referral_id) -> dict:
    return client.get(f"/referrals/{referral_id}", headers=auth(keys["sender"])).get_json()


def moves(app, referral_id) -> list[tuple]:
    with app.app_context():
        events = db.session.scalars(
            select(ReferralEvent)
            .where(ReferralEvent.referral_id == uuid.UUID(referral_id), ReferralEvent.type == "referral.status_changed")
            .order_by(ReferralEvent.sequence)
        )
        return [(e.from_status, e.to_status, e.reason, e.outcome, e.actor.name) for e in events]


def audit(app, referral_id) -> list[str]:
    with app.app_context():
        return sorted(
            db.session.scalars(select(AuditEntry.action).where(AuditEntry.referral_id == uuid.UUID(referral_id)))
        )


# ----------------------------------------------------------------------------- the happy paths


def test_the_program_puts_the_task_it_read_with_a_new_status(app, client, keys, referral_id):
    hook = client.post("/webhooks", json={"url": "http://127.0.0.1:9/hooks"}, headers=auth(keys["sender"]))
    assert hook.status_code == 201
    task, etag = read_task(client, keys["receiver"], referral_id)
    assert etag == 'W/"1"' and task["status"] == "requested"
    task["status"] = "accepted"
    response = put(client, keys["receiver"], referral_id, task, **{"If-Match": etag})
    updated = answered(response, 200)
    assert updated["status"] == "accepted" and updated["meta"]["versionId"] == "2"
    assert updated["businessStatus"]["text"] == "Accepted; the program will contact the family"
    assert response.headers["ETag"] == 'W/"2"' and response.headers["Cache-Control"] == "no-store"
    assert read_task(client, keys["sender"], referral_id)[0] == updated
    assert rest(client, keys, referral_id)["status"] == "accepted"
    assert moves(app, referral_id) == [("requested", "accepted", None, None, "Help Me Grow staff")]
    assert audit(app, referral_id).count("transition") == 1
    with app.app_context():  # the sender's subscription is told, as after a REST move
        payloads = [d.payload for d in db.session.scalars(select(WebhookDelivery))]
    assert [(p["event_type"], p["status"]) for p in payloads] == [("referral.status_changed", "accepted")]


def test_put_and_patch_walk_the_whole_lifecycle(app, client, keys, referral_id):
    receiver = keys["receiver"]
    assert answered(
        patch(client, receiver, referral_id, [{"op": "replace", "path": "/status", "value": "accepted"}]), 200
    )
    hold = [
        {"op": "test", "path": "/status", "value": "accepted"},
        {"op": "replace", "path": "/status", "value": "on-hold"},
        {"op": "add", "path": "/statusReason", "value": {"text": "Family travelling until December."}},
    ]
    held = answered(patch(client, receiver, referral_id, hold, **{"If-Match": 'W/"2"'}), 200)
    assert held["statusReason"] == {"text": "Family travelling until December."} and held["meta"]["versionId"] == "3"
    task, etag = read_task(client, receiver, referral_id)
    task["status"] = "in-progress"
    del task["statusReason"]
    assert answered(put(client, receiver, referral_id, task, **{"If-Match": etag}), 200)["status"] == "in-progress"
    task, etag = read_task(client, receiver, referral_id)
    task["status"] = "completed"
    task["output"] = [{"type": {"text": "Outcome"}, "valueString": "Family connected to Birth to Three."}]
    done = answered(put(client, receiver, referral_id, task, **{"If-Match": etag}), 200)
    assert done["output"] == task["output"]
    seen = rest(client, keys, referral_id)
    assert (seen["status"], seen["outcome"], seen["version"]) == ("completed", "Family connected to Birth to Three.", 5)
    assert moves(app, referral_id) == [
        ("requested", "accepted", None, None, "Help Me Grow staff"),
        ("accepted", "on-hold", "Family travelling until December.", None, "Help Me Grow staff"),
        ("on-hold", "in-progress", None, None, "Help Me Grow staff"),
        ("in-progress", "completed", None, "Family connected to Birth to Three.", "Help Me Grow staff"),
    ]


def test_the_sender_cancels_by_patch(app, client, keys, referral_id):
    cancel = [
        {"op": "replace", "path": "/status", "value": "cancelled"},
        {"op": "add", "path": "/statusReason", "value": {"coding": [{"display": "Family moved away."}]}},
    ]
    task = answered(patch(client, keys["sender"], referral_id, cancel, **{"If-Match": 'W/"1"'}), 200)
    assert task["status"] == "cancelled" and task["statusReason"] == {"text": "Family moved away."}
    assert moves(app, referral_id) == [("requested", "cancelled", "Family moved away.", None, "Hartford Pediatrics")]


def test_the_server_kept_elements_may_be_sent_as_they_were_read(client, keys, referral_id):
    """meta and lastModified are the server's; businessStatus may stay as read."""
    task, _ = read_task(client, keys["receiver"], referral_id)
    task["status"] = "accepted"
    task["meta"] = {"versionId": "99", "lastUpdated": "2020-01-01T00:00:00Z"}
    task["lastModified"] = "2020-01-01T00:00:00Z"
    updated = answered(put(client, keys["receiver"], referral_id, task), 200)
    assert updated["meta"]["versionId"] == "2" and updated["lastModified"] != "2020-01-01T00:00:00Z"


# ----------------------------------------------------------------------------- versions


def test_a_stale_if_match_is_a_412_and_changes_nothing(app, client, keys, referral_id):
    task, etag = read_task(client, keys["receiver"], referral_id)
    task["status"] = "accepted"
    assert answered(put(client, keys["receiver"], referral_id, task, **{"If-Match": etag}), 200)
    task, _ = read_task(client, keys["receiver"], referral_id)
    task["status"] = "in-progress"
    for header in (etag, '"1"', '"v2"'):  # the version read before; a tag that names no version
        stale = answered(put(client, keys["receiver"], referral_id, task, **{"If-Match": header}), 412)
        assert stale["issue"][0]["code"] == "conflict"
    stale = patch(
        client,
        keys["receiver"],
        referral_id,
        [{"op": "replace", "path": "/status", "value": "on-hold"}],
        **{"If-Match": etag},
    )
    answered(stale, 412)
    assert rest(client, keys, referral_id)["status"] == "accepted"
    assert len(moves(app, referral_id)) == 1
    assert (
        answered(put(client, keys["receiver"], referral_id, task, **{"If-Match": '"2"'}), 200)["status"]
        == "in-progress"
    )


@pytest.mark.parametrize("header", ["2", "W/2", 'W/"1', "garbage", 'W/"1", W/"2"'])
@one_engine
def test_an_if_match_that_is_not_an_entity_tag_is_a_400(app, client, keys, referral_id, header):
    task, _ = read_task(client, keys["receiver"], referral_id)
    task["status"] = "accepted"
    outcome = answered(put(client, keys["receiver"], referral_id, task, **{"If-Match": header}), 400)
    assert "If-Match" in outcome["issue"][0]["diagnostics"] and 'W/"3"' in outcome["issue"][0]["diagnostics"]
    ops = [{"op": "replace", "path": "/status", "value": "accepted"}]
    answered(patch(client, keys["receiver"], referral_id, ops, **{"If-Match": header}), 400)
    assert moves(app, referral_id) == []


# ----------------------------------------------------------------------------- what may change


@pytest.mark.parametrize(
    "change, expression",
    [
        (lambda t: t.update(priority="stat"), "Task.priority"),
        (lambda t: t.pop("contained"), "Task.contained"),
        (lambda t: t["owner"].update(reference="Organization/3521d2a6-fcd5-5474-8473-7efb4377ffcd"), "Task.owner"),
        (lambda t: t.update(note=[{"text": "Call after 5pm"}]), "Task.note"),
        (lambda t: t["contained"][0]["name"][0].update(family="Changed"), "Task.contained"),
        (lambda t: t.update(businessStatus={"text": "Anything"}), "Task.businessStatus"),
        (lambda t: t.pop("status"), "Task.status"),
        (lambda t: t.update(status="draft"), "Task.status"),
        (lambda t: t.update(statusReason="busy"), "Task.statusReason"),
        (lambda t: t.update(output=[{"type": {"text": "Outcome"}, "valueInteger": 3}]), "Task.output"),
    ],
)
def test_a_put_that_changes_anything_else_is_a_422_and_changes_nothing(
    app, client, keys, referral_id, change, expression
):
    task, etag = read_task(client, keys["receiver"], referral_id)
    before = copy.deepcopy(task)
    task["status"] = "accepted"
    change(task)
    outcome = answered(put(client, keys["receiver"], referral_id, task, **{"If-Match": etag}), 422)
    assert expression in expressions(outcome)
    assert "Zephyrine" not in json.dumps(outcome) and "Changed" not in json.dumps(outcome)
    assert read_task(client, keys["receiver"], referral_id)[0] == before
    assert moves(app, referral_id) == []


@pytest.mark.parametrize(
    "operations, expression",
    [
        ([{"op": "replace", "path": "/priority", "value": "stat"}], "Task.priority"),
        ([{"op": "remove", "path": "/contained/0"}], "Task.contained"),
        ([{"op": "add", "path": "/note", "value": [{"text": "x"}]}], "Task.note"),
        ([{"op": "move", "from": "/owner", "path": "/output"}], "Task.owner"),
        ([{"op": "replace", "path": "", "value": {"resourceType": "Task"}}], "Task"),
        (
            [
                {"op": "replace", "path": "/status", "value": "accepted"},
                {"op": "replace", "path": "/intent", "value": "plan"},
            ],
            "Task.intent",
        ),
        ([{"op": "replace", "path": "/statusReason", "value": {"text": "x"}}], "Task.statusReason"),  # not there
        ([{"op": "replace", "path": "/status", "value": 7}], "Task.status"),
    ],
)
@one_engine
def test_a_patch_outside_status_reason_and_output_is_a_422(app, client, keys, referral_id, operations, expression):
    outcome = answered(patch(client, keys["receiver"], referral_id, operations), 422)
    assert expression in expressions(outcome)
    assert rest(client, keys, referral_id)["status"] == "requested"
    assert moves(app, referral_id) == []


@pytest.mark.parametrize(
    "payload",
    [
        {"op": "replace", "path": "/status", "value": "accepted"},
        [],
        [{"path": "/status"}],
        [{"op": "jump", "path": "/status"}],
        [{"op": "replace", "path": "status", "value": "accepted"}],
        [{"op": "replace", "path": "/status"}],
        [{"op": "copy", "path": "/status"}],
        [{"op": "replace", "path": "/a~2b", "value": 1}],
        "[",
        None,
    ],
)
@one_engine
def test_a_body_that_is_not_a_json_patch_is_a_400(app, client, keys, referral_id, payload):
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    response = client.patch(
        f"/fhir/Task/{referral_id}", data=raw, headers=auth(keys["receiver"]), content_type=PATCH_JSON
    )
    answered(response, 400)
    assert moves(app, referral_id) == []


def test_a_patch_needs_the_json_patch_media_type(client, keys, referral_id):
    ops = [{"op": "replace", "path": "/status", "value": "accepted"}]
    for content_type in (FHIR_JSON, "application/json"):
        assert answered(patch(client, keys["receiver"], referral_id, ops, content_type=content_type), 415)
    response = client.patch(
        f"/fhir/Task/{referral_id}",
        data="status=accepted",
        headers=auth(keys["receiver"]),
        content_type="application/x-www-form-urlencoded",
    )
    answered(response, 415)
    assert rest(client, keys, referral_id)["status"] == "requested"


def test_a_failed_test_operation_is_a_409(app, client, keys, referral_id):
    ops = [
        {"op": "test", "path": "/status", "value": "accepted"},
        {"op": "replace", "path": "/status", "value": "in-progress"},
    ]
    answered(patch(client, keys["receiver"], referral_id, ops), 409)
    assert moves(app, referral_id) == []


@pytest.mark.parametrize(
    "payload, fault",
    [
        ({"resourceType": "ServiceRequest"}, "Task"),
        ([1, 2], "Task"),
        ("not json", None),  # refused by the strict JSON reader before the view: no element to name
    ],
)
def test_a_put_of_something_other_than_this_task_is_a_400(app, client, keys, referral_id, payload, fault):
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    response = client.put(f"/fhir/Task/{referral_id}", data=raw, headers=auth(keys["receiver"]), content_type=FHIR_JSON)
    outcome = answered(response, 400)
    assert fault in expressions(outcome) if fault else outcome["issue"][0]["code"] == "invalid"
    task, _ = read_task(client, keys["receiver"], referral_id)
    task["status"], task["id"] = "accepted", str(uuid.uuid4())
    assert "Task.id" in expressions(answered(put(client, keys["receiver"], referral_id, task), 400))
    del task["id"]
    assert "Task.id" in expressions(answered(put(client, keys["receiver"], referral_id, task), 400))
    assert moves(app, referral_id) == []


# ----------------------------------------------------------------------------- who may, and the lifecycle


def test_other_keys_cannot_update(app, client, keys, referral_id):
    task, _ = read_task(client, keys["receiver"], referral_id)
    task["status"] = "accepted"
    ops = [{"op": "replace", "path": "/status", "value": "accepted"}]
    # Another program's staff: the referral does not exist for them.
    for response in (
        put(client, keys["stranger"], referral_id, task),
        patch(client, keys["stranger"], referral_id, ops),
    ):
        outcome = answered(response, 404)
        assert outcome["issue"][0]["code"] == "not-found" and "Zephyrine" not in json.dumps(outcome)
    # The sender may not accept; a key without a referral scope, none at all.
    assert answered(put(client, keys["sender"], referral_id, task), 403)["issue"][0]["code"] == "forbidden"
    assert answered(patch(client, keys["admin"], referral_id, ops), 403)["issue"][0]["code"] == "forbidden"
    anonymous = client.patch(f"/fhir/Task/{referral_id}", data=json.dumps(ops), content_type=PATCH_JSON)
    assert answered(anonymous, 401)["issue"][0]["code"] == "login"
    unknown = str(uuid.uuid4())
    assert answered(put(client, keys["receiver"], unknown, {**task, "id": unknown}), 404)
    assert answered(
        client.put(
            "/fhir/Task/not-a-uuid", data=json.dumps(task), headers=auth(keys["receiver"]), content_type=FHIR_JSON
        ),
        404,
    )
    assert rest(client, keys, referral_id)["status"] == "requested"
    assert moves(app, referral_id) == []


def test_lifecycle_violations(app, client, keys, referral_id):
    receiver = keys["receiver"]

    def to(status, **extra):
        return patch(
            client,
            receiver,
            referral_id,
            [{"op": "replace", "path": "/status", "value": status}]
            + [{"op": "add", "path": f"/{k}", "value": v} for k, v in extra.items()],
        )

    skipped = answered(to("completed"), 409)
    assert skipped["issue"][0]["code"] == "conflict"
    assert skipped["issue"][1]["expression"] == ["Task.status"]
    assert skipped["issue"][1]["diagnostics"] == "Next statuses this key may choose: accepted, rejected."
    assert answered(to("requested"), 409), "an update moves the referral: the same status is no move"
    assert "Task.statusReason" in expressions(answered(to("rejected"), 422)), "a reason is required"
    outcome = answered(to("accepted", output=[{"type": {"text": "Outcome"}, "valueString": "Early"}]), 422)
    assert "Task.output" in expressions(outcome), "an outcome only on completion"
    assert answered(to("entered-in-error", statusReason={"text": "Wrong child."}), 403), "the sender's move"
    assert answered(to("rejected", statusReason={"text": "x" * 2001}), 422)
    assert moves(app, referral_id) == []
    assert answered(to("rejected", statusReason={"text": "Outside our area."}), 200)
    closed = answered(to("accepted"), 409)
    assert closed["issue"][1]["diagnostics"] == "This key may choose no next status."
    assert [m[1] for m in moves(app, referral_id)] == ["rejected"]


# ----------------------------------------------------------------------------- capability, CORS


def test_the_capability_statement_says_task_takes_update_and_patch(client):
    statement = client.get("/fhir/metadata").get_json()
    parse(statement)
    task = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Task")
    assert {i["code"] for i in task["interaction"]} == {"read", "search-type", "update", "patch"}
    assert task["updateCreate"] is False


def test_cors_preflight_of_a_task_update_only_from_configured_origins(app, keys, monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://partner.example")
    partner_app = create_app(api_config.TestConfig(app.config["SQLALCHEMY_DATABASE_URI"]))
    client = partner_app.test_client()
    preflight = {
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "Authorization, If-Match, Content-Type",
    }
    allowed = client.options(f"/fhir/Task/{uuid.uuid4()}", headers={"Origin": "https://partner.example", **preflight})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://partner.example"
    assert (
        "PATCH" in allowed.headers["Access-Control-Allow-Methods"]
        and "PUT" in allowed.headers["Access-Control-Allow-Methods"]
    )
    assert "if-match" in allowed.headers["Access-Control-Allow-Headers"].lower()
    refused = client.options(f"/fhir/Task/{uuid.uuid4()}", headers={"Origin": "https://evil.example", **preflight})
    assert "Access-Control-Allow-Origin" not in refused.headers
    with partner_app.app_context():
        db.session.remove()
        db.engine.dispose()
