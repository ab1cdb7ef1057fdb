"""PostgreSQL restarted while the API serves traffic: requests during the outage are 503s in
the JSON error envelope, and once the server is back every request succeeds, with the same
gunicorn workers (their pooled connections are checked before use and replaced).

The webhook delivery worker runs through it too, and delivers every event once it is back.

This stops the machine's PostgreSQL server for a few seconds (`pg_ctlcluster`), so it runs
only against a server on this machine; it always starts the server again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from models import Referral
from tests.conftest import IN_CI, PG_URL
from tests.faults.conftest import (
    Gunicorn,
    Receiver,
    WebhookWorker,
    call,
    database_session,
    free_port,
    make_keys,
    wait_until,
)
from tests.helpers import auth, body

OUTAGE_S = 2.0


def local_cluster() -> tuple[str, str] | None:
    """(version, name) of the one PostgreSQL cluster on this machine, when the tests use it."""
    if make_url(PG_URL).host not in ("127.0.0.1", "localhost", "::1") or not shutil.which("pg_ctlcluster"):
        return None
    versions = sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").is_dir() else []
    return (versions[-1].parent.name, "main") if versions else None


def pg_ctl(action: str) -> None:
    version, name = local_cluster()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action],
        check=True,
        timeout=60,
        capture_output=True,
    )


def accepting() -> bool:
    url = make_url(PG_URL)
    try:
        psycopg.connect(
            host=url.host, port=url.port or 5432, user=url.username, dbname="postgres", connect_timeout=2
        ).close()
        return True
    except psycopg.OperationalError:
        return False


def wait_for_postgres(deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while not accepting():
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL does not accept connections {deadline_s} s after its start")
        time.sleep(0.2)


def ensure_started() -> None:
    """Start the server unless it already accepts connections, and wait until it does."""
    if not accepting():
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", *local_cluster(), "start"], timeout=60, capture_output=True
        )
    wait_for_postgres()


ALL_OK = {"list": 200, "search": 200, "referrals": 200, "submit": 201, "ready": 200, "health": 200}


def statuses(replies: dict) -> dict:
    return {name: reply.status for name, reply in replies.items()}


@pytest.fixture
def cluster():
    if local_cluster() is None:
        reason = f"PostgreSQL at {make_url(PG_URL).host} is not a pg_ctlcluster server on this machine"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def assert_unavailable(reply) -> None:
    assert reply.status == 503, (reply.status, reply.error, reply.body)
    assert reply.body["error"] == "service_unavailable"
    assert reply.headers["content-type"] == "application/json"


def test_requests_fail_cleanly_while_postgresql_restarts_and_succeed_after(cluster, pg_database, tmp_path):
    keys = make_keys(pg_database)
    sender = auth(keys["sender"])
    receiver = Receiver(free_port())
    with ExitStack() as running:
        receiver.start()
        running.callback(receiver.stop)
        server = running.enter_context(Gunicorn(pg_database, tmp_path / "gunicorn.log"))
        url = server.url
        hook = call("POST", url + "/webhooks", {"url": receiver.url}, sender).body
        worker = WebhookWorker(pg_database, tmp_path / "worker.log")
        running.callback(worker.stop)

        def traffic(key: str) -> dict[str, object]:
            return {
                "list": call("GET", url + "/services?per_page=5"),
                "search": call("GET", url + "/services?search=speech"),
                "referrals": call("GET", url + "/referrals", headers=sender),
                "submit": call("POST", url + "/referrals", body(), {**sender, "Idempotency-Key": key}),
                "ready": call("GET", url + "/readyz"),
                "health": call("GET", url + "/healthz"),
            }

        assert statuses(traffic(str(uuid.uuid4()))) == ALL_OK
        workers = server.worker_pids()

        outage: list[dict[str, object]] = []
        try:
            pg_ctl("stop")
            stopped = time.monotonic()
            while time.monotonic() - stopped < OUTAGE_S or len(outage) < 2:
                outage.append(traffic(f"during-{len(outage)}"))
        finally:
            ensure_started()

        for replies in outage:
            assert replies.pop("health").status == 200, "the process lives on"
            ready = replies.pop("ready")
            assert_unavailable(ready)
            assert ready.body["reason"] == "database_unreachable"
            assert int(ready.headers["retry-after"]) > 0
            for reply in replies.values():
                assert_unavailable(reply)
                assert int(reply.headers["retry-after"]) > 0

        # Back at once, on the same workers: no request fails, none is retried.
        for round_ in range(5):
            assert statuses(traffic(f"during-{round_}")) == ALL_OK
        assert server.worker_pids() == workers

        # A restart between two requests: the workers' pooled connections are dead, and they
        # are found so before use and replaced, so the next requests succeed too.
        try:
            pg_ctl("restart")
        finally:
            ensure_started()
        for _ in range(3):
            assert statuses(traffic(str(uuid.uuid4()))) == ALL_OK
        assert server.worker_pids() == workers

        # The delivery worker lived through both restarts and sends every referral's event.
        def deliveries() -> list[dict]:
            return call("GET", f"{url}/webhooks/{hook['id']}/deliveries?per_page=100", headers=sender).body["contents"]

        wait_until(lambda: all(d["status"] == "delivered" for d in deliveries()), "every event delivered")
        assert worker.process.poll() is None, "the delivery worker runs on"
        delivered = deliveries()

    with database_session(pg_database) as session:
        # The first referral, one per key refused during the outage and sent again, and the
        # three after the second restart.
        referrals = session.scalar(select(func.count(Referral.id)))
    assert referrals == 1 + min(5, len(outage)) + 3
    assert len(delivered) == referrals
    events = sorted(json.loads(raw)["event_id"] for _, raw in receiver.received)
    assert events == sorted(d["event_id"] for d in delivered), "each event arrived once"
