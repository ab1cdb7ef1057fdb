"""HTTP caching of public reads (ETag, 304, Cache-Control, Last-Modified) and the result cache.

A front-end site revalidates with the ETag it holds and gets a 304 while the directory is
unchanged; right after any directory write (core.curation, core.bulk) the same URL answers
200 with the new data and a new ETag. Referral data is never cached.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from werkzeug.http import http_date, parse_date

from api import caching, create_app
from api import config as api_config
from api.extensions import db
from core import bulk, clients, curation, directory_version
from models import DirectoryVersion
from schemas.inputs import ServiceIn

ROOT = Path(__file__).resolve().parents[2]
SEED = {
    name: json.loads((ROOT / "seed_data" / f"{name}.json").read_text())
    for name in ("services", "organizations", "programs", "taxonomy")
}
SERVICES = {s["name"]: s for s in SEED["services"]["services"]}
HMG_CT = SERVICES["Help Me Grow Connecticut"]
ORGANIZATION = SEED["organizations"]["organizations"][0]
LOCATION = ORGANIZATION["locations"][0]["id"]
PROGRAM = SEED["programs"]["programs"][0]
TAXONOMY = SEED["taxonomy"]["taxonomies"][0]["id"]
TERM = SEED["taxonomy"]["taxonomy_terms"][0]["id"]

PUBLIC_READS = [
    "/",
    "/services",
    "/services?search=lead+paint&per_page=5",
    "/services?category=occh-basic-needs&town=Hartford",
    f"/services/{HMG_CT['id']}",
    "/organizations",
    f"/organizations/{ORGANIZATION['id']}",
    "/programs",
    f"/programs/{PROGRAM['slug']}",
    "/taxonomies",
    f"/taxonomies/{TAXONOMY}",
    "/taxonomy_terms",
    f"/taxonomy_terms/{TERM}",
    "/referral-contact-points",
    "/service_at_locations",
    "/fhir/metadata",
    "/fhir/HealthcareService?name=help",
    f"/fhir/HealthcareService/{HMG_CT['id']}",
    f"/fhir/Organization/{ORGANIZATION['id']}",
    f"/fhir/Location/{LOCATION}",
    "/openapi.json",
]


def save_service(app, **changes) -> None:
    with app.app_context():
        curation.save_service(db.session, ServiceIn().load({**HMG_CT, **changes}))
        db.session.commit()


def settle(app) -> None:
    """Date the last write a minute back (Last-Modified is sent once the write's second is over)."""
    with app.app_context():
        table = DirectoryVersion.__table__
        db.session.execute(update(table).values(changed_at=directory_version.utcnow() - timedelta(minutes=1)))
        db.session.commit()


@pytest.mark.parametrize("path", PUBLIC_READS)
def test_a_public_read_has_a_strong_etag_and_revalidates_with_304(app, client, path):
    settle(app)
    first = client.get(path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong: no W/
    assert first.headers["Cache-Control"] == "public, no-cache"
    assert parse_date(first.headers["Last-Modified"]) is not None

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == "public, no-cache"

    fresh = client.get(path)
    assert (fresh.status_code, fresh.headers["ETag"], fresh.data) == (200, etag, first.data)


def test_a_validator_of_another_url_or_an_old_one_gets_the_full_answer(client):
    services = client.get("/services").headers["ETag"]
    answer = client.get("/organizations", headers={"If-None-Match": services})
    assert answer.status_code == 200
    assert client.get("/services", headers={"If-None-Match": '"0000"'}).status_code == 200
    assert client.get("/services", headers={"If-None-Match": f'"0000", {services}'}).status_code == 304


def test_a_write_through_curation_gives_fresh_data_and_a_new_etag_at_once(app, client):
    record = f"/services/{HMG_CT['id']}"
    search = "/services?search=quokka"
    before = client.get(record)
    found_before = client.get(search)
    assert found_before.get_json()["total_items"] == 0

    save_service(app, name="Quokka Help Line")

    after = client.get(record, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.get_json()["name"] == "Quokka Help Line"
    assert after.headers["ETag"] != before.headers["ETag"]
    found = client.get(search, headers={"If-None-Match": found_before.headers["ETag"]})
    assert found.status_code == 200
    assert [s["name"] for s in found.get_json()["contents"]] == ["Quokka Help Line"]
    # The FHIR view of the same service too.
    assert client.get(f"/fhir/HealthcareService/{HMG_CT['id']}").get_json()["name"] == "Quokka Help Line"


def test_a_bulk_insert_gives_fresh_data_and_a_new_etag_at_once(app, client):
    search = "/fhir/HealthcareService?name=quokka"
    before = client.get(search)
    assert before.get_json()["total"] == 0
    record = {
        "id": str(uuid.uuid4()),
        "organization_id": ORGANIZATION["id"],
        "name": "Quokka Reading Circle",
        "description": "A reading circle for toddlers and their parents.",
        "status": "active",
    }
    with app.app_context():
        bulk.insert_services(db.session, [ServiceIn().load(record)])
        db.session.commit()

    after = client.get(search, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.get_json()["total"] == 1
    assert after.headers["ETag"] != before.headers["ETag"]


def test_saving_an_unchanged_record_or_rolling_back_keeps_the_caches(app, client):
    etag = client.get("/services").headers["ETag"]
    save_service(app)  # the same record: curation changes nothing
    with app.app_context():
        curation.save_service(db.session, ServiceIn().load({**HMG_CT, "name": "Never Saved"}))
        db.session.flush()
        db.session.rollback()
    assert client.get("/services", headers={"If-None-Match": etag}).status_code == 304


def test_referral_traffic_leaves_the_directory_caches_alone(app, client, referrals_on):
    with app.app_context():
        key = clients.create_client(db.session, "Hartford Pediatrics", ["referrals:submit"], []).key
        db.session.commit()
    etag = client.get("/services").headers["ETag"]
    from tests.helpers import body

    sent = client.post(
        "/referrals", json=body(), headers={"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())}
    )
    assert sent.status_code == 201
    assert client.get("/services", headers={"If-None-Match": etag}).status_code == 304


def test_referral_data_is_never_cached(app, client, referrals_on):
    with app.app_context():
        key = clients.create_client(db.session, "Hartford Pediatrics", ["referrals:submit"], []).key
        db.session.commit()
    from tests.helpers import body

    headers = {"Authorization": f"Bearer {key}"}
    sent = client.post("/referrals", json=body(), headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    referral = sent.get_json()["id"]
    for path in (f"/referrals/{referral}", "/referrals", f"/fhir/Task/{referral}", f"/fhir/ServiceRequest/{referral}"):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "no-store"
        assert "Last-Modified" not in answer.headers or path.startswith("/fhir/")
        # A validator never turns a referral read into a 304.
        if "ETag" in answer.headers:
            assert client.get(path, headers={**headers, "If-None-Match": answer.headers["ETag"]}).status_code == 200
    # The referral's own ETag names its version, as before.
    assert client.get(f"/referrals/{referral}", headers=headers).headers["ETag"] == '"v1"'
    assert client.get(f"/fhir/Task/{referral}", headers=headers).headers["ETag"] == 'W/"1"'


def test_public_answers_are_the_same_for_every_origin(app, client):
    a = client.get("/services", headers={"Origin": "https://partner.example"})
    b = client.get("/services", headers={"Origin": "https://211.example"})
    assert a.headers["ETag"] == b.headers["ETag"]
    assert a.headers["Access-Control-Allow-Origin"] == b.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in a.headers["Access-Control-Expose-Headers"]
    revalidated = client.get("/services", headers={"Origin": "https://211.example", "If-None-Match": a.headers["ETag"]})
    assert revalidated.status_code == 304
    assert revalidated.headers["Access-Control-Allow-Origin"] == "*"
    # Without an Origin too: nothing in a public answer varies by Origin, so a shared cache
    # may give one origin's answer to another (and to a request with no Origin).
    plain = client.get("/services")
    assert plain.headers["Access-Control-Allow-Origin"] == "*"
    assert "Origin" not in plain.headers.get("Vary", "")


def test_if_modified_since_is_answered_from_the_last_write(app, client):
    settle(app)
    first = client.get("/programs")
    last_modified = parse_date(first.headers["Last-Modified"])
    later = http_date(last_modified + timedelta(seconds=1))
    earlier = http_date(last_modified - timedelta(seconds=1))
    # A browser sends back the date it was given: that is a 304, though the write's time had
    # a fraction of a second the date has not.
    assert client.get("/programs", headers={"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    assert client.get("/programs", headers={"If-Modified-Since": later}).status_code == 304
    assert client.get("/programs", headers={"If-Modified-Since": earlier}).status_code == 200
    # If-None-Match wins over If-Modified-Since.
    assert client.get("/programs", headers={"If-Modified-Since": later, "If-None-Match": '"0"'}).status_code == 200


def test_a_write_within_the_second_of_the_last_date_sent_is_not_hidden():
    """No Last-Modified while the last write's second is still running: a second write in that
    second would share the date, and a client revalidating with it would keep the old body."""
    now = datetime.now(UTC)
    assert caching.last_modified(directory_version.Version("v", now)) is None
    assert caching.last_modified(directory_version.Version("v", now - timedelta(seconds=2))) == http_date(
        now - timedelta(seconds=2)
    )


def test_errors_are_not_cached(app, client):
    missing = f"/services/{uuid.uuid4()}"
    assert client.get(missing).status_code == 404
    answer = client.get(missing)
    assert "ETag" not in answer.headers and answer.headers["Cache-Control"] == "no-store"
    assert client.get("/services?colour=blue").status_code == 422
    # `If-None-Match: *` matches only what exists: a missing service is still a 404.
    assert client.get(missing, headers={"If-None-Match": "*"}).status_code == 404
    settle(app)
    date = client.get("/services").headers["Last-Modified"]
    # A date is the same for every URL: a bad request with one is still answered as bad.
    assert client.get("/services?colour=blue", headers={"If-Modified-Since": date}).status_code == 422
    assert client.get(missing, headers={"If-Modified-Since": date}).status_code == 404


def another_instance(app, **settings):
    """A second app (as another process would build it) on the same database."""
    config = api_config.TestConfig(app.config["SQLALCHEMY_DATABASE_URI"])
    for name, value in settings.items():
        setattr(config, name, value)
    return create_app(config)


def test_cache_max_age_is_configurable(app):
    other = another_instance(app, CACHE_MAX_AGE=300)
    try:
        answer = other.test_client().get("/services")
        assert answer.headers["Cache-Control"] == "public, max-age=300"
    finally:
        with other.app_context():
            db.engine.dispose()


def rename_behind_the_sessions_back(app, name: str) -> None:
    """A write the session never sees (raw SQL on a connection): the data version stays."""
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(
                text("UPDATE service SET name = :name WHERE name = :old"), {"name": name, "old": HMG_CT["name"]}
            )


def test_the_result_cache_answers_repeated_reads_until_the_version_changes(app, client):
    path = f"/services/{HMG_CT['id']}"
    first = client.get(path)
    rename_behind_the_sessions_back(app, "Quokka Help Line")
    cached = client.get(path)
    assert cached.data == first.data  # from the cache: the raw write did not change the version
    assert cached.headers["Content-Type"] == first.headers["Content-Type"]
    with app.app_context():
        directory_version.bump(db.session)
        db.session.commit()
    assert client.get(path).get_json()["name"] == "Quokka Help Line"


def test_with_no_result_cache_every_read_runs_the_query(app):
    other = another_instance(app, RESULT_CACHE_SIZE=0)
    try:
        reader = other.test_client()
        # (A service record's own ETag is a digest of its body; the FHIR view's is the version's.)
        path = f"/fhir/HealthcareService/{HMG_CT['id']}"
        etag = reader.get(path).headers["ETag"]
        rename_behind_the_sessions_back(app, "Quokka Help Line")
        answer = reader.get(path)
        assert answer.get_json()["name"] == "Quokka Help Line"
        assert answer.headers["ETag"] == etag  # still the ETag of the version: raw writes must bump it
    finally:
        with other.app_context():
            db.engine.dispose()


def test_the_redis_result_cache_is_shared_by_instances(app, redis_url):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    first = another_instance(app, CACHE_REDIS_URL=redis_url, CACHE_KEY_PREFIX=prefix)
    second = another_instance(app, CACHE_REDIS_URL=redis_url, CACHE_KEY_PREFIX=prefix)
    path = "/services?search=help+me+grow"
    try:
        original = first.test_client().get(path)
        rename_behind_the_sessions_back(app, "Quokka Help Line")
        # The second instance never ran this query: its answer comes from Redis.
        assert second.test_client().get(path).data == original.data
        save_service(app, name="Wombat Help Line")
        fresh = second.test_client().get(path, headers={"If-None-Match": original.headers["ETag"]})
        assert fresh.status_code == 200
        assert "Wombat Help Line" in [s["name"] for s in fresh.get_json()["contents"]]
        assert first.test_client().get(path).data == fresh.data
    finally:
        for instance in (first, second):
            with instance.app_context():
                db.engine.dispose()


def test_the_in_process_result_cache_stays_within_its_bounds():
    from api.caching import CachedAnswer, MemoryResultCache

    cache = MemoryResultCache(size=2, max_bytes=10)
    cache.put("a", "v1", CachedAnswer([], b"aaaa"))
    cache.put("b", "v1", CachedAnswer([], b"bbbb"))
    assert cache.get("a").body == b"aaaa"  # now the most recently used
    cache.put("c", "v1", CachedAnswer([], b"cc"))  # over two answers: b, the least recently used, goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (
        CachedAnswer([], b"aaaa"),
        None,
        CachedAnswer([], b"cc"),
    )
    cache.put("d", "v1", CachedAnswer([], b"ddddddddd"))  # over ten bytes: the oldest go until it fits
    assert [cache.get(key) is not None for key in "acd"] == [False, False, True]
    cache.put("e", "v2", CachedAnswer([], b"e"))  # a new data version: the older answers go
    assert cache.get("d") is None and cache.get("e").body == b"e"
