"""A webhook receiver that is down for a while: the delivery worker (`flask webhooks run`, a
process of its own) keeps retrying with backoff, and once the receiver is back every event
arrives, exactly once per subscription, signed; the attempts are recorded."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from core import webhooks
from models import ReferralEvent
from models.vocab import WEBHOOK_EVENTS
from tests.faults.conftest import Receiver, WebhookWorker, database_session, free_port, make_keys, wait_until
from tests.helpers import auth, body, move

REFERRALS = 4


def test_events_sent_while_the_receiver_is_down_arrive_once_it_is_back(app, client, tmp_path):
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    # The receiver listens on 127.0.0.1 over http: allowed here (and in the worker's environment).
    app.config.update(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True, WEBHOOK_ALLOW_HTTP=True)
    keys = make_keys(database_url)
    receiver = Receiver(free_port())
    hooks = {
        who: client.post("/webhooks", json={"url": receiver.url}, headers=auth(keys[who])).get_json()
        for who in ("sender", "receiver")
    }
    # The receiver is down (its port refuses connections) while referrals are sent and moved.
    for _ in range(REFERRALS):
        created = client.post(
            "/referrals", json=body(), headers=auth(keys["sender"], **{"Idempotency-Key": str(time.time_ns())})
        )
        assert created.status_code == 201
        assert move(client, keys, created.get_json()["id"], "receiver", "accepted").status_code == 200
    events_per_hook = 2 * REFERRALS

    def deliveries(who: str) -> list[dict]:
        page = client.get(f"/webhooks/{hooks[who]['id']}/deliveries?per_page=100", headers=auth(keys[who]))
        return page.get_json()["contents"]

    worker = WebhookWorker(database_url, tmp_path / "worker.log")
    try:
        # A few rounds of retries while it is down: every delivery failed at least twice.
        wait_until(
            lambda: all(
                len(found) == events_per_hook and all(d["attempts"] >= 2 for d in found)
                for found in map(deliveries, hooks)
            ),
            "every delivery attempted twice while the receiver is down",
        )
        assert receiver.received == []
        receiver.start()
        wait_until(
            lambda: all(all(d["status"] == "delivered" for d in deliveries(who)) for who in hooks),
            "every delivery made once the receiver is back",
        )
        assert worker.process.poll() is None, "the worker runs on"
    finally:
        worker.stop()
        receiver.stop()

    with database_session(database_url) as session:
        event_ids = {
            str(e) for e in session.scalars(select(ReferralEvent.id).where(ReferralEvent.type.in_(WEBHOOK_EVENTS)))
        }
    assert len(event_ids) == events_per_hook

    # Every event arrived, once per subscription, signed with that subscription's secret.
    by_secret: dict[str, list[str]] = {hook["secret"]: [] for hook in hooks.values()}
    for headers, raw in receiver.received:
        stamp = int(headers["x-occh-signature"].split(",")[0].removeprefix("t="))
        secret = next(s for s in by_secret if webhooks.sign(s, stamp, raw) == headers["x-occh-signature"])
        payload = json.loads(raw)
        assert headers["x-occh-event-id"] == payload["event_id"]
        by_secret[secret].append(payload["event_id"])
    for delivered in by_secret.values():
        assert sorted(delivered) == sorted(event_ids)

    # The attempt log shows the refused connections, then the delivery.
    for who in hooks:
        for delivery in deliveries(who):
            attempts = delivery["attempt_log"]
            assert len(attempts) == delivery["attempts"] >= 3
            assert all(a["status_code"] is None and a["outcome"] == "unreachable" for a in attempts[:-1])
            assert (attempts[-1]["outcome"], attempts[-1]["status_code"]) == ("delivered", 204)
