"""A worker killed with SIGKILL in the middle of referral traffic loses no referral and makes
none twice: clients retry with their Idempotency-Key until they get an answer."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

from sqlalchemy import select

from models import IdempotencyKey, Referral
from tests.faults.conftest import Gunicorn, call, database_session, make_keys
from tests.helpers import auth, body

CLIENTS = 8
MAX_REFERRALS_PER_CLIENT = 150  # traffic runs until a kill cut a request, within these bounds
TRAFFIC_DEADLINE_S = 90
RETRY_FOR_S = 60  # a client retries one referral this long (a loaded machine restarts workers slowly)
KILLS = 5


def test_referrals_survive_a_worker_killed_mid_traffic(database, tmp_path):
    keys = make_keys(database)
    answered: dict[str, list[tuple[int, str]]] = {}  # idempotency key -> [(status, referral id)]
    started: list[str] = []  # every idempotency key a client began sending
    interrupted: list[str] = []  # keys whose request was cut or failed and was retried
    lock = threading.Lock()
    traffic = threading.Event()
    stop = threading.Event()
    failures: list[str] = []
    deadline = time.monotonic() + TRAFFIC_DEADLINE_S

    with Gunicorn(database, tmp_path / "gunicorn.log") as server:

        def partner(number: int) -> None:
            try:
                send_referrals(number)
            except BaseException as exc:  # a thread's failure would otherwise vanish with it
                with lock:
                    failures.append(repr(exc))

        def send_referrals(number: int) -> None:
            # New referrals until told to stop; a referral begun is retried until it is answered.
            for index in range(MAX_REFERRALS_PER_CLIENT):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                key = str(uuid.uuid4())
                with lock:
                    started.append(key)
                payload = body(reason=f"Fault test referral {number}-{index}.")
                give_up = time.monotonic() + RETRY_FOR_S
                while time.monotonic() < give_up:
                    reply = call(
                        "POST", server.url + "/referrals", payload, auth(keys["sender"], **{"Idempotency-Key": key})
                    )
                    traffic.set()
                    if reply.status in (200, 201):
                        with lock:
                            answered.setdefault(key, []).append((reply.status, reply.body["id"]))
                        break
                    assert reply.status is None or reply.status >= 500, (reply.status, reply.body)
                    with lock:
                        interrupted.append(key)
                    time.sleep(0.1)

        threads = [threading.Thread(target=partner, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        killed = []
        try:
            assert traffic.wait(30), "no referral traffic started"
            # Kill a busy worker (8 clients keep both busy); again, after gunicorn replaced it,
            # until a request was cut. Traffic goes on until then.
            for _ in range(KILLS):
                time.sleep(0.3)
                victim = min(server.worker_pids())
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
                server.wait_for_workers(server.workers)
                if interrupted:
                    break
        finally:
            time.sleep(0.5)  # some traffic after the last replacement
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
        replaced = server.worker_pids()

    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    assert interrupted, "no request was in flight when a worker was killed"
    assert len(replaced) == 2 and not replaced & set(killed), "gunicorn replaced the killed workers"

    # Every client got an answer for every referral it began, always the same one for a key.
    assert sorted(answered) == sorted(started)
    assert all(len({rid for _, rid in replies}) == 1 for replies in answered.values())
    answered_ids = {replies[0][1] for replies in answered.values()}

    with database_session(database) as session:
        stored = session.execute(select(Referral.id, Referral.reason)).all()
        stored_keys = session.scalars(select(IdempotencyKey.key)).all()
    # Every referral answered exists; none was made twice (one per reason, one per key).
    assert {str(rid) for rid, _ in stored} == answered_ids
    assert len(stored) == len({reason for _, reason in stored}) == len(answered)
    assert sorted(stored_keys) == sorted(answered)
