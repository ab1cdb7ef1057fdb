"""gunicorn.conf.py on a real gunicorn: forwarded headers follow PROXY_HOPS, and the error log
never holds what a client put in a request line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from api.config import TEST_DATA_ENCRYPTION_KEY

ROOT = Path(__file__).resolve().parents[1]
SECRET = "quokkasecretword"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, database_url: str, log: Path, **env: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.log = log.open("w")
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("RATELIMIT_", "REDIS_", "PROXY_", "FORWARDED_"))
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{self.port}", "wsgi:app"],
            cwd=ROOT,
            env={
                **clean,
                "DATABASE_URL": database_url,
                "RATELIMIT_ENABLED": "false",
                "LOG_LEVEL": "INFO",
                "DATA_ENCRYPTION_KEY": TEST_DATA_ENCRYPTION_KEY,
                **env,
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited; see {log}"
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"gunicorn did not start; see {log}")

    def get(self, path: str, headers: dict | None = None):
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def raw(self, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        return self.log_path.read_text()


@pytest.fixture
def database(sqlite_templates):
    url, drop = sqlite_templates.new_database(seed=True)
    yield url
    drop()


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-For": "203.0.113.9"}


def test_with_no_proxy_hops_no_forwarded_header_is_believed_even_from_loopback(database, tmp_path):
    server = Server(database, tmp_path / "gunicorn.log")
    try:
        status, headers, data = server.get("/", FORWARDED)
    finally:
        server.stop()
    assert status == 200
    assert "Strict-Transport-Security" not in headers  # not taken for TLS
    assert json.loads(data)["profile"].startswith("http://127.0.0.1:")


def test_behind_one_proxy_its_forwarded_scheme_is_believed(database, tmp_path):
    server = Server(database, tmp_path / "gunicorn.log", PROXY_HOPS="1")
    try:
        status, headers, data = server.get("/", {"X-Forwarded-Proto": "https"})
    finally:
        server.stop()
    assert status == 200
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert json.loads(data)["profile"].startswith("https://127.0.0.1:")


@pytest.mark.parametrize(
    "request_line",
    [
        f"GET /services?search={SECRET} HTTP/1.1 trailing\r\n".encode(),
        f"GET /services?search={SECRET}\x01 HTTP/1.1\r\n".encode(),
        f"G\x00T /services?search={SECRET} HTTP/1.1\r\n".encode(),
        f"GET /services?search={SECRET} HTTP/9.9\r\n".encode(),
        f"GET /services?search={SECRET} HTTP/1.1\r\nBad Header: {SECRET}\r\n".encode(),
    ],
    ids=["extra part", "control character", "bad method", "bad version", "bad header"],
)
def test_a_malformed_request_never_puts_its_text_in_the_log(database, tmp_path, request_line):
    server = Server(database, tmp_path / "gunicorn.log")
    try:
        reply = server.raw(request_line + b"Host: 127.0.0.1\r\n\r\n")
        status, _, _ = server.get("/healthz")  # the worker still serves
    finally:
        log = server.stop()
    assert reply.startswith(b"HTTP/1.1 4") or reply.startswith(b"HTTP/1.0 4")
    assert status == 200
    assert SECRET not in log
    assert "Invalid request from ip=127.0.0.1 (the request line is not logged)" in log
