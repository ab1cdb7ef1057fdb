"""Several stateless instances behind a load balancer: two gunicorn servers on different ports,
one PostgreSQL database, one Redis (rate limits and the shared result cache).

A directory write is seen through both instances at once, with new ETags; an ETag from one
instance revalidates at the other; an Idempotency-Key used at one holds at the other.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from api import config as api_config
from api.extensions import db
from core import clients, curation
from schemas.inputs import ServiceIn
from tests.conftest import accept_referrals
from tests.helpers import PUBLIC_HOST, body, two_instances

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {s["name"]: s for s in json.loads((ROOT / "seed_data" / "services.json").read_text())["services"]}
HMG_CT = SERVICES["Help Me Grow Connecticut"]


@pytest.fixture
def deployment(pg_templates, redis_url, tmp_path):
    """Two instances on one fresh, seeded PostgreSQL database and one Redis; and an admin app
    (a third process's view of the same database) for directory writes and API keys."""
    database_url, drop = pg_templates.new_database(seed=True)
    prefix = f"instances-{uuid.uuid4().hex[:8]}"
    env = {
        "REDIS_URL": redis_url,
        "CACHE_REDIS_URL": redis_url,
        "TRUSTED_HOSTS": PUBLIC_HOST,
        "CACHE_KEY_PREFIX": prefix,
        "RATELIMIT_KEY_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
        "DATA_ENCRYPTION_KEY": api_config.TEST_DATA_ENCRYPTION_KEY,
    }
    try:
        with two_instances(database_url, env, tmp_path) as running:
            yield running
    finally:
        drop()


def test_a_directory_write_is_seen_through_every_instance_at_once(deployment):
    a, b, admin = deployment
    path = "/services?search=help+me+grow&per_page=5"
    status, headers, first = b.request("GET", path)
    assert status == 200
    etag = headers["ETag"]
    # The same answer, and the same validator, from the other instance.
    status, headers, same = a.request("GET", path)
    assert (status, headers["ETag"], same) == (200, etag, first)
    assert a.request("GET", path, {"If-None-Match": etag})[0] == 304

    with admin.app_context():  # a curator's write, through core.curation, from a third process
        curation.save_service(db.session, ServiceIn().load({**HMG_CT, "name": "Help Me Grow Quokka Line"}))
        db.session.commit()

    for instance in (b, a):
        status, headers, fresh = instance.request("GET", path, {"If-None-Match": etag})
        assert status == 200
        assert headers["ETag"] != etag
        assert "Help Me Grow Quokka Line" in [s["name"] for s in json.loads(fresh)["contents"]]


def test_an_idempotency_key_holds_across_instances(deployment):
    a, b, admin = deployment
    with admin.app_context():
        accept_referrals(db.session)
        key = clients.create_client(db.session, "Hartford Pediatrics", ["referrals:submit"], []).key
        db.session.commit()
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"visit-{uuid.uuid4()}"}
    status, _, sent = a.request("POST", "/referrals", headers, body())
    assert status == 201
    status, _, retried = b.request("POST", "/referrals", headers, body())
    assert status == 201
    assert json.loads(retried)["id"] == json.loads(sent)["id"]
    status, _, listed = b.request("GET", "/referrals", {"Authorization": f"Bearer {key}"})
    assert [r["id"] for r in json.loads(listed)["contents"]] == [json.loads(sent)["id"]]
    # The same key with another body is refused at either instance.
    other = body(reason="Something else entirely.")
    assert a.request("POST", "/referrals", headers, other)[0] == 409
