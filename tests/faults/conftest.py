"""Fault tests: the production server (gunicorn, sync workers) on loopback, a database of the
test's own, and real faults (a database restart, a killed worker, a receiver that is down).

Every test is bounded: servers are stopped in `finally`, waits have deadlines, and the number
of requests is fixed or bounded by a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from api import create_app
from api.config import TEST_DATA_ENCRYPTION_KEY, TestConfig
from api.extensions import db
from core import clients
from tests.conftest import _database, accept_referrals

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GUNICORN = BIN / "gunicorn"
FLASK = BIN / "flask"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RATELIMIT_", "REDIS_", "WEBHOOK_"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "RATELIMIT_ENABLED": "false",
            "FLASK_APP": "wsgi",
            "LOG_LEVEL": "WARNING",
            "DATA_ENCRYPTION_KEY": TEST_DATA_ENCRYPTION_KEY,
            # The fault tests' webhook receivers listen on 127.0.0.1 over http (refused by default).
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            "WEBHOOK_ALLOW_HTTP": "true",
            **extra,
        }
    )
    return env


def children_of(pid: int) -> set[int]:
    """Process ids whose parent is `pid` (gunicorn's workers), read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def stop_process(process: subprocess.Popen, log) -> None:
    """SIGTERM (gunicorn's master stops its workers), then SIGKILL after 15 s; close its log."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    log.close()


@dataclass
class Reply:
    status: int | None  # None: no HTTP answer (connection refused, reset or timed out)
    body: dict | list | None = None
    headers: dict = field(default_factory=dict)
    error: str | None = None


def call(method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 15) -> Reply:
    """One HTTP request on a new connection; never raises for a refused or cut connection."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, dict(exc.headers)
    except (OSError, urllib.error.URLError) as exc:  # refused, reset, timed out, cut mid-answer
        return Reply(None, error=type(getattr(exc, "reason", exc)).__name__)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return Reply(status, parsed, {k.lower(): v for k, v in got.items()})


class Gunicorn:
    """`gunicorn -w <workers> wsgi:app` on a free loopback port; its log goes to `log_path`."""

    def __init__(self, database_url: str, log_path: Path, workers: int = 2, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [
                str(GUNICORN),
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "30",
                "--graceful-timeout",
                "5",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=server_env(database_url, **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.workers = workers
        try:
            self.wait_for_workers(workers)
        except BaseException:
            self.stop()
            raise

    def wait_for_workers(self, count: int, deadline_s: float = 60) -> set[int]:
        """Wait until `count` workers run and /healthz answers; return their pids."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}); see {self.log_path}")
            pids = self.worker_pids()
            if len(pids) == count and call("GET", self.url + "/healthz", timeout=2).status == 200:
                return pids
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start {count} workers in {deadline_s} s; see {self.log_path}")

    def worker_pids(self) -> set[int]:
        return children_of(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process, self.log)

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture
def database(request, engine):
    """A migrated, seeded database of the test's own: its URL."""
    url, drop = _database(request, engine, seed=True)
    yield url
    drop()


@pytest.fixture
def pg_database(request):
    """A migrated, seeded PostgreSQL database of the test's own: its URL."""
    url, drop = _database(request, "postgresql", seed=True)
    yield url
    drop()


@contextmanager
def database_session(database_url: str) -> Iterator[Session]:
    """A session on the database, through an app of its own (closed and disposed after)."""
    app = create_app(TestConfig(database_url))
    with app.app_context():
        try:
            yield db.session
        finally:
            db.session.remove()
            db.engine.dispose()


def make_keys(database_url: str) -> dict[str, str]:
    """Keys of a partner that submits referrals and of the Help Me Grow program's staff
    (Help Me Grow Connecticut takes referrals)."""
    with database_session(database_url) as session:
        accept_referrals(session)
        made = {
            "sender": clients.create_client(session, "Hartford Pediatrics", ["referrals:submit"], []),
            "receiver": clients.create_client(session, "Help Me Grow staff", ["referrals:manage"], ["help-me-grow"]),
        }
        session.commit()
    return {name: new.key for name, new in made.items()}


class Receiver:
    """A subscriber's HTTP endpoint on a fixed loopback port, which can go down (nothing
    listens: connections are refused) and come back on the same port."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hooks"
        self.received: list[tuple[dict, bytes]] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def wait_until(condition, what: str, deadline_s: float = 45):
    deadline = time.monotonic() + deadline_s
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {deadline_s} s"
        time.sleep(0.2)
    return result


# Webhook retries after 0.2, 0.4, 0.8, 1.6 s ... instead of 2, 4, 8, 16 s: the schedule, faster.
WEBHOOK_BACKOFF_BASE_S = "0.2"
# The receivers are on loopback: a 5 s deadline per attempt (default 10 s) also shortens the
# claim a pass holds on its deliveries, so a pass cut off by a fault is retried sooner.
WEBHOOK_TIMEOUT_S = "5"


class WebhookWorker:
    """`flask webhooks run`, the delivery worker, as a process of its own."""

    def __init__(self, database_url: str, log_path: Path):
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [str(FLASK), "webhooks", "run"],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=server_env(
                database_url, WEBHOOK_BACKOFF_BASE_S=WEBHOOK_BACKOFF_BASE_S, WEBHOOK_TIMEOUT_S=WEBHOOK_TIMEOUT_S
            ),
        )

    def stop(self) -> None:
        stop_process(self.process, self.log)
