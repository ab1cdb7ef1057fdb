"""A family's data can be erased, a stolen database file reveals no child, and the audit log is complete."""

from __future__ import annotations

import json
import os
import random
import stat
import string
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text, update

from api import config as settings
from api import create_app
from api.cli import SEED_DIR, load_directory
from api.config import TEST_DATA_ENCRYPTION_KEY, Config
from api.extensions import db
from models import AuditEntry, Base, Referral, WebhookSubscription, crypto, utcnow
from tests.conftest import _pg_admin, _pg_url_for, accept_referrals
from tests.helpers import HMG_CT, Receiver, auth, body, deliver, move

# Their receivers listen on loopback over http: allowed in these tests, refused by default.
pytestmark = pytest.mark.usefixtures("loopback_webhooks")

NEW_KEY = "k2026:" + crypto.new_key()


def unique_name() -> str:
    """A name no seed file, column name or other test holds, to look for in raw bytes."""
    return "Quorvex" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))


def submit_child(client, keys, given: str, family: str | None = None, idem: str | None = None, **changes):
    data = body(**changes)
    data["child"] = {**data["child"], "given_name": given, "family_name": family or given + "son"}
    response = client.post(
        "/referrals", json=data, headers=auth(keys["sender"], **{"Idempotency-Key": idem or str(uuid.uuid4())})
    )
    assert response.status_code == 201, response.get_json()
    return response


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def erase(app, referral_id: str):
    return app.test_cli_runner().invoke(args=["referrals", "erase", referral_id])


def every_row_decrypted(app) -> str:
    """Every row of every table, read through the models' column types (encrypted values
    decrypted), as one string."""
    with app.app_context():
        rows = []
        for table in Base.metadata.sorted_tables:
            rows.extend(str(tuple(row)) for row in db.session.execute(select(table)))
        db.session.remove()
        return "\n".join(rows)


def raw_column(app, table: str, column: str, row_id) -> str | None:
    with app.app_context():
        id_value = uuid.UUID(str(row_id)).hex if db.engine.dialect.name == "sqlite" else str(row_id)
        value = db.session.execute(text(f"SELECT {column} FROM {table} WHERE id = :id"), {"id": id_value}).scalar()
        db.session.remove()
        return value


# ----------------------------------------------------------------------------- at rest


def test_personal_fields_and_webhook_secrets_are_stored_encrypted(app, client, keys):
    name = unique_name()
    referral = submit_child(client, keys, name).get_json()
    for column in (
        "child_given_name",
        "child_family_name",
        "child_birth_date",
        "guardian_name",
        "guardian_phone",
        "reason",
        "referrer_name",
        "consent_obtained_by",
    ):
        stored = raw_column(app, "referral", column, referral["id"])
        assert stored.startswith("test:"), column
        assert name not in stored and "Marisol" not in stored and "2024-03-02" not in stored
    hook = client.post("/webhooks", json={"url": "http://127.0.0.1:9/hooks"}, headers=auth(keys["sender"])).get_json()
    stored_secret = raw_column(app, "webhook_subscription", "secret", hook["id"])
    assert stored_secret.startswith("test:") and hook["secret"] not in stored_secret
    # ...and every API read returns them in clear.
    fetched = client.get(f"/referrals/{referral['id']}", headers=auth(keys["receiver"])).get_json()
    assert fetched["child"]["given_name"] == name and fetched["child"]["birth_date"] == "2024-03-02"
    assert fetched["erased"] is False and "erased_at" not in fetched


def test_a_value_moved_to_another_column_does_not_decrypt(app, client, keys):
    referral_id = submit_child(client, keys, unique_name()).get_json()["id"]
    with app.app_context():
        db.session.execute(
            update(Referral.__table__)
            .where(Referral.__table__.c.id == uuid.UUID(referral_id))
            .values(guardian_name=text("child_given_name"))
        )
        db.session.commit()
        db.session.remove()
    with pytest.raises(crypto.EncryptionKeyError):
        every_row_decrypted(app)


def test_an_encrypted_column_cannot_be_searched_in_sql():
    with pytest.raises(TypeError, match="encrypted column"):
        select(Referral).where(Referral.child_family_name == "Smith")
    with pytest.raises(TypeError, match="encrypted column"):
        select(Referral).where(Referral.reason.contains("speech"))
    assert select(Referral).where(Referral.outcome.is_(None)) is not None


def test_the_app_refuses_to_start_without_a_key(monkeypatch):
    monkeypatch.delenv("DATA_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("DATA_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(SystemExit) as refused:
        create_app(Config())
    message = str(refused.value)
    assert "DATA_ENCRYPTION_KEY is not set" in message and "\n" not in message
    monkeypatch.setenv("DATA_ENCRYPTION_KEY", "not-a-key")
    with pytest.raises(SystemExit) as refused:
        create_app(Config())
    assert "32 random bytes" in str(refused.value)
    crypto.configure(TEST_DATA_ENCRYPTION_KEY)  # the other tests' keyring


@pytest.fixture
def sqlite_app(tmp_path):
    """A SQLite app on a database file this test creates (not a copy of the template)."""
    path = tmp_path / "fresh.db"
    application = create_app(settings.TestConfig(f"sqlite:///{path}"))
    with application.app_context():
        upgrade()
        load_directory(db.session, SEED_DIR)
        accept_referrals(db.session)
        db.session.commit()
    yield application, path
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_the_sqlite_file_never_holds_a_childs_name(sqlite_app):
    app, path = sqlite_app
    client = app.test_client()
    with app.app_context():
        from core import clients

        sender = clients.create_client(db.session, "Hartford Pediatrics", ["referrals:submit"], []).key
        receiver = clients.create_client(db.session, "HMG staff", ["referrals:manage"], ["help-me-grow"]).key
        db.session.commit()
    made = {"sender": sender, "receiver": receiver}
    given, family = unique_name(), unique_name()
    referral = submit_child(client, made, given, family).get_json()
    assert (
        move(
            client, made, referral["id"], "receiver", "rejected", reason=f"{given} lives outside our area."
        ).status_code
        == 200
    )
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(f"{path}-wal").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(f"{path}-shm").st_mode) == 0o600
    before = file_bytes(path)
    assert uuid.UUID(referral["id"]).hex.encode() in before  # the bytes read are the referral's
    assert given.encode() not in before and family.encode() not in before
    assert erase(app, referral["id"]).exit_code == 0
    with app.app_context():
        db.session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.remove()
    after = file_bytes(path)
    assert uuid.UUID(referral["id"]).hex.encode() in after
    assert given.encode() not in after and family.encode() not in after


# ----------------------------------------------------------------------------- erasure


def test_after_erasure_no_route_table_or_webhook_holds_the_childs_name(app, client, keys, receiver):
    given, family = unique_name(), unique_name()
    for who in ("sender", "receiver"):
        assert client.post("/webhooks", json={"url": receiver.url}, headers=auth(keys[who])).status_code == 201
    referral = submit_child(client, keys, given, family, idem="visit-7").get_json()
    referral_id = referral["id"]
    assert move(client, keys, referral_id, "receiver", "accepted").status_code == 200
    assert (
        move(client, keys, referral_id, "receiver", "completed", outcome=f"{given} started speech therapy.").status_code
        == 200
    )
    assert given in every_row_decrypted(app)

    result = erase(app, referral_id)
    assert result.exit_code == 0, result.output
    assert given not in result.output
    assert erase(app, referral_id).exit_code != 0  # already erased

    for who in ("sender", "receiver"):
        key = keys[who]
        read = client.get(f"/referrals/{referral_id}", headers=auth(key))
        assert read.status_code == 200
        data = read.get_json()
        assert data["erased"] is True and data["erased_at"]
        assert data["status"] == "completed" and data["service_id"] == HMG_CT
        for field in ("child", "guardian", "consent", "referrer", "reason", "outcome", "status_reason"):
            assert field not in data
        listed = client.get("/referrals", headers=auth(key)).get_json()["contents"]
        assert [r["erased"] for r in listed] == [True]
        events = client.get(f"/referrals/{referral_id}/events", headers=auth(key)).get_json()
        assert [e["type"] for e in events][-1] == "referral.erased"
        assert events[-1]["actor"] is None and events[-1]["to_status"] == "completed"
        assert [e["to_status"] for e in events] == ["requested", "accepted", "completed", "completed"]
        service_request = client.get(f"/fhir/ServiceRequest/{referral_id}", headers=auth(key)).get_json()
        task = client.get(f"/fhir/Task/{referral_id}", headers=auth(key)).get_json()
        tasks = client.get("/fhir/Task", headers=auth(key)).get_json()
        for resource in (service_request, task, tasks["entry"][0]["resource"]):
            assert resource["extension"][0]["url"].endswith("/referral-erased")
            assert resource["contained"] == [{"resourceType": "Patient", "id": "patient"}]
        for response_text in (
            read.data,
            json.dumps(listed),
            json.dumps(events),
            json.dumps(service_request),
            json.dumps(task),
            json.dumps(tasks),
        ):
            assert given not in response_text if isinstance(response_text, str) else given.encode() not in response_text
            assert (
                (family not in response_text)
                if isinstance(response_text, str)
                else family.encode() not in response_text
            )

    # An erased referral can no longer move, and its Idempotency-Key no longer replays it.
    assert move(client, keys, referral_id, "sender", "entered-in-error", reason="x").status_code == 409
    replay = client.post("/referrals", json=body(), headers=auth(keys["sender"], **{"Idempotency-Key": "visit-7"}))
    assert replay.status_code == 409

    everything = every_row_decrypted(app)
    assert given not in everything and family not in everything and "Marisol" not in everything

    deliver(app)
    payloads = [json.loads(raw) for _, raw in receiver.received]
    assert {p["event_type"] for p in payloads} == {"referral.created", "referral.status_changed", "referral.erased"}
    assert [p for p in payloads if p["event_type"] == "referral.erased"][0]["referral_id"] == referral_id
    assert len([p for p in payloads if p["event_type"] == "referral.erased"]) == 2  # sender and receiver
    assert all(given not in json.dumps(p) for p in payloads)

    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "erase")).one()
        assert entry.client_id is None and entry.channel == "cli" and entry.request_id.startswith("cli-")
        assert str(entry.referral_id) == referral_id


def test_erasing_an_unknown_referral_is_refused(app):
    result = erase(app, str(uuid.uuid4()))
    assert result.exit_code != 0 and "No referral has this id." in result.output


def test_purge_erases_only_closed_referrals_older_than_the_retention(app, client, keys):
    def make(status: str | None, age_days: int) -> str:
        referral_id = submit_child(client, keys, unique_name()).get_json()["id"]
        if status == "rejected":
            move(client, keys, referral_id, "receiver", "rejected", reason="Outside our area.")
        elif status == "completed":
            move(client, keys, referral_id, "receiver", "accepted")
            move(client, keys, referral_id, "receiver", "completed")
        elif status == "accepted":
            move(client, keys, referral_id, "receiver", "accepted")
        with app.app_context():
            db.session.execute(
                update(Referral)
                .where(Referral.id == uuid.UUID(referral_id))
                .values(updated_at=utcnow() - timedelta(days=age_days))
            )
            db.session.commit()
        return referral_id

    old_completed, old_rejected = make("completed", 400), make("rejected", 40)
    recent_completed, old_open, old_requested = make("completed", 10), make("accepted", 400), make(None, 400)

    unset = app.test_cli_runner().invoke(args=["referrals", "purge"])
    assert unset.exit_code != 0 and "REFERRAL_RETENTION_DAYS" in unset.output
    app.config["REFERRAL_RETENTION_DAYS"] = 30
    result = app.test_cli_runner().invoke(args=["referrals", "purge"])
    assert result.exit_code == 0 and "Erased 2 closed referrals" in result.output
    erased = {
        rid: client.get(f"/referrals/{rid}", headers=auth(keys["sender"])).get_json()["erased"]
        for rid in (old_completed, old_rejected, recent_completed, old_open, old_requested)
    }
    assert erased == {
        old_completed: True,
        old_rejected: True,
        recent_completed: False,
        old_open: False,
        old_requested: False,
    }
    again = app.test_cli_runner().invoke(args=["referrals", "purge"])
    assert "Erased 0 closed referrals" in again.output


# ----------------------------------------------------------------------------- keys


def test_key_rotation_keeps_everything_readable_under_the_new_key(app, client, keys):
    name = unique_name()
    referral_id = submit_child(client, keys, name).get_json()["id"]
    hook = client.post("/webhooks", json={"url": "http://127.0.0.1:9/hooks"}, headers=auth(keys["sender"])).get_json()
    url = app.config["SQLALCHEMY_DATABASE_URI"]

    class Rotating(settings.TestConfig):
        def __init__(self, current, others):
            super().__init__(url)
            self.DATA_ENCRYPTION_KEY, self.DATA_ENCRYPTION_KEYS = current, others

    try:
        rotating = create_app(Rotating(NEW_KEY, [TEST_DATA_ENCRYPTION_KEY]))
        result = rotating.test_cli_runner().invoke(args=["keys", "rotate"])
        assert result.exit_code == 0 and "under key k2026" in result.output, result.output
        assert raw_column(rotating, "referral", "child_given_name", referral_id).startswith("k2026:")
        assert raw_column(rotating, "webhook_subscription", "secret", hook["id"]).startswith("k2026:")
        # The old key is no longer needed.
        only_new = create_app(Rotating(NEW_KEY, []))
        assert name in every_row_decrypted(only_new)
        read = only_new.test_client().get(f"/referrals/{referral_id}", headers=auth(keys["receiver"]))
        assert read.get_json()["child"]["given_name"] == name
        with only_new.app_context():
            assert db.session.get(WebhookSubscription, uuid.UUID(hook["id"])).secret == hook["secret"]
            db.session.remove()
        # ...and a process with the old key only cannot read the rotated values.
        old_only = create_app(settings.TestConfig(url))
        with pytest.raises(crypto.EncryptionKeyError):
            every_row_decrypted(old_only)
        for application in (rotating, only_new, old_only):
            with application.app_context():
                db.engine.dispose()
    finally:
        crypto.configure(TEST_DATA_ENCRYPTION_KEY)


@pytest.fixture
def database_at_0007(engine, tmp_path, request):
    """A database migrated to 0007 (before encryption), seeded, with one referral in clear."""
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        drop = lambda: None  # noqa: E731
    else:
        request.getfixturevalue("pg_templates")
        name = f"occh_{os.getpid()}_old_{uuid.uuid4().hex[:6]}"
        with _pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _pg_url_for(name)

        def drop():
            with _pg_admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    application = create_app(settings.TestConfig(url))
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    drop()


def test_the_migration_encrypts_existing_referrals(database_at_0007):
    app = database_at_0007
    name = unique_name()
    client_id, referral_id, event_id, hook_id = (uuid.uuid4() for _ in range(4))
    with app.app_context():
        # Seeded by today's models, then taken back to the revision before encryption.
        upgrade()
        load_directory(db.session, SEED_DIR)
        db.session.commit()
        db.session.remove()
        downgrade(revision="0008_webhooks")
        sqlite = db.engine.dialect.name == "sqlite"
        ident = (lambda u: u.hex) if sqlite else str
        now = utcnow().replace(tzinfo=None).isoformat(" ") if sqlite else utcnow()
        db.session.execute(
            text(
                "INSERT INTO api_client (id, name, key_prefix, key_hash, scopes, created_at) "
                "VALUES (:id, 'Partner', 'occh_abc', 'x', 'referrals:submit', :now)"
            ),
            {"id": ident(client_id), "now": now},
        )
        db.session.execute(
            text(
                "INSERT INTO referral (id, service_id, sender_client_id, status, urgency, reason, version, created_at, "
                "updated_at, child_given_name, child_family_name, child_birth_date, child_town, guardian_name, "
                "guardian_relationship, guardian_phone, guardian_contact_preference, guardian_may_leave_message, "
                "consent_obtained, consent_obtained_by, consent_relationship, consent_obtained_at, consent_method, "
                "referrer_name, referrer_organization) VALUES (:id, :service, :client, 'rejected', 'routine', "
                "'Speech delay.', 2, :now, :now, :name, 'Oldfamily', :birth, 'Hartford', 'Pat Oldfamily', 'mother', "
                "'860-555-0142', 'phone', :yes, :yes, 'Dr. Ruiz', 'mother', :now, 'verbal', 'Dr. Ruiz', 'Clinic')"
            ),
            {
                "id": ident(referral_id),
                "service": ident(uuid.UUID(HMG_CT)),
                "client": ident(client_id),
                "now": now,
                "name": name,
                "birth": "2024-03-02" if sqlite else date(2024, 3, 2),
                "yes": True,
            },
        )
        db.session.execute(
            text(
                "INSERT INTO referral_event (id, referral_id, sequence, type, actor_client_id, from_status, to_status, "
                "reason, occurred_at) VALUES (:id, :referral, 1, 'referral.status_changed', :client, 'requested', "
                "'rejected', :reason, :now)"
            ),
            {
                "id": ident(event_id),
                "referral": ident(referral_id),
                "client": ident(client_id),
                "reason": f"{name} moved away.",
                "now": now,
            },
        )
        db.session.execute(
            text(
                "INSERT INTO webhook_subscription (id, client_id, url, events, secret, active, created_at) "
                "VALUES (:id, :client, 'https://partner.example/hooks', 'referral.created', 'whsec_old', :yes, :now)"
            ),
            {"id": ident(hook_id), "client": ident(client_id), "now": now, "yes": True},
        )
        db.session.commit()
        upgrade()
        db.session.remove()
    assert raw_column(app, "referral", "child_given_name", referral_id).startswith("test:")
    assert name not in raw_column(app, "referral_event", "reason", event_id)
    assert raw_column(app, "webhook_subscription", "secret", hook_id).startswith("test:")
    with app.app_context():
        referral = db.session.get(Referral, referral_id)
        assert referral.child_given_name == name and referral.child_birth_date.isoformat() == "2024-03-02"
        assert referral.events[0].reason == f"{name} moved away." and referral.erased_at is None
        assert db.session.get(WebhookSubscription, hook_id).secret == "whsec_old"
        db.session.remove()


# ----------------------------------------------------------------------------- audit


def audit_rows(app, **where) -> list[AuditEntry]:
    with app.app_context():
        stmt = select(AuditEntry).order_by(AuditEntry.at)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditEntry, name) == value)
        rows = list(db.session.scalars(stmt))
        db.session.expunge_all()
        return rows


def test_replays_and_refused_lookups_are_audited_with_request_id_and_channel(app, client, keys):
    headers = lambda who, rid, **more: auth(keys[who], **{"X-Request-ID": rid}, **more)  # noqa: E731
    first = client.post("/referrals", json=body(), headers=headers("sender", "req-create", **{"Idempotency-Key": "k1"}))
    referral_id = uuid.UUID(first.get_json()["id"])
    replay = client.post(
        "/referrals", json=body(), headers=headers("sender", "req-replay", **{"Idempotency-Key": "k1"})
    )
    assert replay.status_code == 201
    [create] = audit_rows(app, action="create")
    [replayed] = audit_rows(app, action="replay")
    assert (create.channel, create.request_id) == ("rest", "req-create")
    assert (replayed.channel, replayed.request_id, replayed.referral_id) == ("rest", "req-replay", referral_id)

    # Not visible to this key, and not there at all: both 404, both audited as denied.
    unknown = uuid.uuid4()
    assert client.get(f"/referrals/{referral_id}", headers=headers("stranger", "req-peek")).status_code == 404
    assert client.get(f"/referrals/{unknown}/events", headers=headers("stranger", "req-unknown")).status_code == 404
    assert client.get(f"/fhir/Task/{referral_id}", headers=headers("stranger", "req-fhir")).status_code == 404
    moved = move(client, keys, referral_id, "stranger", "cancelled", reason="x", headers={"X-Request-ID": "req-move"})
    assert moved.status_code == 404
    denied = {(d.request_id, d.channel, d.requested_id, d.referral_id) for d in audit_rows(app, action="denied")}
    assert denied == {
        ("req-peek", "rest", referral_id, None),
        ("req-unknown", "rest", unknown, None),
        ("req-fhir", "fhir", referral_id, None),
        ("req-move", "rest", referral_id, None),
    }

    # FHIR reads carry the fhir channel.
    client.get(f"/fhir/ServiceRequest/{referral_id}", headers=headers("receiver", "req-sr"))
    [read] = audit_rows(app, request_id="req-sr")
    assert (read.action, read.channel) == ("read", "fhir")

    assert erase(app, str(referral_id)).exit_code == 0
    [erased] = audit_rows(app, action="erase")
    assert erased.channel == "cli" and erased.request_id.startswith("cli-") and erased.client_id is None
    assert all(row.channel and row.request_id for row in audit_rows(app))
