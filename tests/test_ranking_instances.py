"""SEARCH_RANKER=tantivy across processes: two gunicorn instances (2 workers each) on one
database, each worker with its own Tantivy index. A write made through a third process is
searchable through both instances as soon as it returns (each worker catches up from the
`search_change` log before it answers), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest

from api import config as api_config
from api.extensions import db
from core import curation
from schemas.inputs import ServiceIn
from tests.conftest import _database
from tests.helpers import PUBLIC_HOST, Instance, two_instances

OCCH = json.loads(
    (__import__("pathlib").Path(__file__).resolve().parents[1] / "seed_data" / "organizations.json").read_text()
)["organizations"][0]["id"]


@pytest.fixture
def tantivy_deployment(request, engine, tmp_path):
    database_url, drop = _database(request, engine, seed=True)
    env = {
        "SEARCH_RANKER": "tantivy",
        "TRUSTED_HOSTS": PUBLIC_HOST,
        "RATELIMIT_ENABLED": "false",
        "REDIS_URL": "",
        "CACHE_REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "DATA_ENCRYPTION_KEY": api_config.TEST_DATA_ENCRYPTION_KEY,
    }
    try:
        with two_instances(database_url, env, tmp_path) as running:
            yield running
    finally:
        drop()


def found(instance: Instance, words: str) -> list[str]:
    status, _, body = instance.request("GET", f"/services?search={words}&per_page=10")
    assert status == 200, body
    return [s["id"] for s in json.loads(body)["contents"]]


def test_a_write_is_searchable_through_every_worker_of_every_instance(tantivy_deployment):
    a, b, admin = tantivy_deployment
    # Several requests each, so that both workers of each instance build their index.
    for _ in range(4):
        assert found(a, "asthma") and found(b, "asthma")
        assert found(a, "axolotl") == [] and found(b, "axolotl") == []
    made = str(uuid.uuid4())
    record = {"id": made, "organization_id": OCCH, "name": "Axolotl swim club", "status": "active"}
    with admin.app_context():  # a curator's write, from a third process
        curation.save_service(db.session, ServiceIn().load(record))
        db.session.commit()
    for _ in range(4):
        assert found(a, "axolotl") == [made]
        assert found(b, "axolotl") == [made]
    with admin.app_context():
        curation.save_service(db.session, ServiceIn().load({**record, "name": "Salamander swim club"}))
        db.session.commit()
    for _ in range(4):
        assert found(a, "axolotl") == [] and found(b, "axolotl") == []
        assert found(a, "salamander") == [made] and found(b, "salamander") == [made]
