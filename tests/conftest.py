"""Fixtures: every test runs against SQLite and against the real PostgreSQL server.

A migrated, seeded template database is built once per engine; each test gets its own copy
(a file copy for SQLite, `CREATE DATABASE ... TEMPLATE` for PostgreSQL). Under `CI=true` an
unreachable PostgreSQL fails the run; elsewhere its tests are skipped with the reason shown.

Where a test goes: one that only reads takes `reader` (the module's shared database, on both
engines); one that writes takes `app`/`client` (a copy of its own); a rule checked before the
database is reached (argument or body validation, a header, a parser) is tested once, at the
schema or core function where possible, else over HTTP with `@one_engine` (tests/helpers.py).
Shared helpers are in tests/helpers.py and fixtures here: no test module imports another.
The suite runs under pytest-xdist (`make test`); database names carry the process id.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from api import create_app
from api.cli import load_directory
from api.config import TestConfig
from api.extensions import db

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
# Everything the tests read is inside the project: the HSDS 3.0 files (CC BY-SA 4.0) and the
# hospital's pages the seed cites. Nothing outside the repository is read.
REFERENCE = ROOT / "reference"
HSDS_REFERENCE = REFERENCE / "hsds-3.0"
PAGES = ROOT / "seed_data" / "sources"
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ENGINES = ["sqlite", "postgresql"]
_counter = itertools.count()


def _pg_admin():
    url = make_url(PG_URL)
    return psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=True,
        connect_timeout=5,
    )


def _pg_url_for(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def build_app(database_url: str, seed: bool = True):
    app = create_app(TestConfig(database_url))
    with app.app_context():
        upgrade()
        if seed:
            load_directory(db.session, __import__("api.cli", fromlist=["SEED_DIR"]).SEED_DIR)
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return app


class SqliteTemplates:
    def __init__(self, tmp_path_factory):
        self.root = tmp_path_factory.mktemp("sqlite")
        self.templates: dict[bool, str] = {}

    def new_database(self, seed: bool) -> tuple[str, callable]:
        if seed not in self.templates:
            path = self.root / f"template-{int(seed)}.db"
            build_app(f"sqlite:///{path}", seed)
            self.templates[seed] = str(path)
        path = self.root / f"test-{next(_counter)}.db"
        shutil.copyfile(self.templates[seed], path)
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)


class PostgresTemplates:
    def __init__(self):
        self.prefix = f"occh_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.templates: dict[bool, str] = {}

    def new_database(self, seed: bool) -> tuple[str, callable]:
        with _pg_admin() as conn:
            if seed not in self.templates:
                name = f"{self.prefix}_tmpl{int(seed)}"
                conn.execute(f'CREATE DATABASE "{name}"')
                build_app(_pg_url_for(name), seed)
                self.templates[seed] = name
            name = f"{self.prefix}_t{next(_counter)}"
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.templates[seed]}"')

        def drop():
            with _pg_admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return _pg_url_for(name), drop

    def close(self):
        with _pg_admin() as conn:
            for name in self.templates.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_sessionstart(session):
    if not (HSDS_REFERENCE / "schema").is_dir() or not any(PAGES.glob("*.txt")):
        pytest.exit(
            f"{HSDS_REFERENCE} and {PAGES} (the HSDS 3.0 files and the hospital's pages) are missing.", returncode=1
        )


@pytest.fixture(scope="session")
def pg_templates():
    try:
        _pg_admin().close()
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {make_url(PG_URL).host} is unreachable in CI: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL is unreachable: {exc}")
    templates = PostgresTemplates()
    yield templates
    templates.close()


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory):
    return SqliteTemplates(tmp_path_factory)


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


def _database(request, engine: str, seed: bool):
    templates = (
        request.getfixturevalue("pg_templates")
        if engine == "postgresql"
        else request.getfixturevalue("sqlite_templates")
    )
    return templates.new_database(seed)


@pytest.fixture
def app(request, engine):
    """The app on its own migrated and seeded database."""
    url, drop = _database(request, engine, seed=True)
    application = create_app(TestConfig(url))
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    drop()


@pytest.fixture
def empty_app(request, engine):
    """The app on its own migrated database with no data."""
    url, drop = _database(request, engine, seed=False)
    application = create_app(TestConfig(url))
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    drop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module", params=ENGINES)
def shared_app(request):
    """One migrated and seeded database per module and engine, shared by the module's tests
    that only read (through `reader`): a read needs no database of its own. A test that
    writes, or that changes the app's config, takes `app` and `client`."""
    url, drop = _database(request, request.param, seed=True)
    application = create_app(TestConfig(url))
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    drop()


@pytest.fixture
def reader(shared_app):
    """A test client on the module's shared, read-only database (see `shared_app`)."""
    return shared_app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url():
    """The Redis server of the shared rate-limit tests (each test uses a key prefix of its own).
    Under `CI=true` an unreachable Redis fails the run; elsewhere its tests are skipped."""
    from urllib.parse import urlsplit

    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis at {urlsplit(REDIS_URL).hostname} is unreachable in CI: {exc}", pytrace=False)
        pytest.skip(f"Redis is unreachable: {exc}")
    return REDIS_URL


@pytest.fixture
def loopback_webhooks(request):
    """Let the test's app deliver webhooks to receivers on loopback over http (refused by default:
    WEBHOOK_ALLOW_PRIVATE_NETWORKS and WEBHOOK_ALLOW_HTTP are for tests and closed networks)."""
    if "app" in request.fixturenames:
        request.getfixturevalue("app").config.update(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True, WEBHOOK_ALLOW_HTTP=True)


# Referrals: no page says any service takes electronic referrals, so the seed turns them off
# everywhere. A test that sends referrals turns them on for its service first, in its own
# database, as the program's staff would.
REFERRAL_SERVICE_ID = "abfe9b77-37de-537c-9f69-3fd3da4671f2"  # Help Me Grow Connecticut


def accept_referrals(session, *service_ids) -> None:
    """Turn on `accepts_referrals` for these services (default: Help Me Grow Connecticut).
    The caller commits."""
    from sqlalchemy import update

    from models import Service

    ids = [uuid.UUID(str(service_id)) for service_id in service_ids or (REFERRAL_SERVICE_ID,)]
    session.execute(update(Service).where(Service.id.in_(ids)).values(accepts_referrals=True))


@pytest.fixture
def referrals_on(app) -> str:
    """Help Me Grow Connecticut takes electronic referrals in this test's database: its id."""
    with app.app_context():
        accept_referrals(db.session)
        db.session.commit()
        db.session.remove()
    return REFERRAL_SERVICE_ID


# Keys and a webhook receiver shared by the referral, FHIR, privacy and curation tests (their
# helpers are in tests/helpers.py).
@pytest.fixture
def keys(app, referrals_on):
    """Keys of a partner (sender), the Help Me Grow program (receiver), another partner,
    and an administrator; Help Me Grow Connecticut takes referrals."""
    from core import clients

    with app.app_context():
        made = {
            "sender": clients.create_client(db.session, "Hartford Pediatrics", ["referrals:submit"], []),
            "receiver": clients.create_client(db.session, "Help Me Grow staff", ["referrals:manage"], ["help-me-grow"]),
            "stranger": clients.create_client(
                db.session, "Other agency", ["referrals:submit", "referrals:manage"], ["healthy-homes"]
            ),
            "admin": clients.create_client(db.session, "Directory admin", ["directory:write"], []),
        }
        db.session.commit()
        return {name: new.key for name, new in made.items()}


@pytest.fixture
def curation_keys(app):
    """Keys of Healthy Homes' staff (directory:write), a directory administrator and a partner."""
    from core import clients

    with app.app_context():
        made = {
            "staff": clients.create_client(
                db.session, "Healthy Homes staff", ["directory:write"], ["healthy-homes"], email="hh-staff@example.org"
            ),
            "admin": clients.create_client(db.session, "Directory admin", ["directory:admin"], []),
            "partner": clients.create_client(db.session, "Hartford Pediatrics", ["referrals:submit"], []),
        }
        db.session.commit()
        return {name: new.key for name, new in made.items()}


@pytest.fixture
def receiver(app):
    """A real HTTP receiver on loopback, allowed for this test's app."""
    from tests.helpers import Receiver, allow_loopback

    allow_loopback(app)
    r = Receiver()
    yield r
    r.close()
