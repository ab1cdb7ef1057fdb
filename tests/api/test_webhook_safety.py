"""Webhooks cannot reach inside the network, and one partner cannot stall the others.

Registration refuses every internal address class in every notation (with the default
settings); a delivery re-resolves the host, connects to the address it checked and opens no
connection when the answer turned internal; no redirect is followed; each attempt has one total
deadline; different subscriptions are served concurrently; the delivery log names outcomes,
never exceptions. Every receiver here is a real socket on 127.0.0.1 (the tests that deliver to
one turn WEBHOOK_ALLOW_PRIVATE_NETWORKS and WEBHOOK_ALLOW_HTTP on, as the suite must)."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import subprocess
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from api.extensions import db
from core import webhooks
from core.errors import InvalidData
from models import ApiClient, WebhookDelivery, utcnow
from tests.helpers import allow_loopback, auth, submit

# Never connected to: a public address that the test resolvers answer at registration.
PUBLIC = "93.184.215.14"
NAME = "hooks.partner.test"


# ----------------------------------------------------------------------------- receivers


class Receiver:
    """An HTTP receiver on 127.0.0.1 that answers `status` (and `headers`) and records every
    request with the time it arrived."""

    def __init__(self, status: int = 204, headers: dict | None = None, tls: ssl.SSLContext | None = None):
        self.status, self.headers = status, headers or {}
        self.received: list[tuple[float, dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, raw))
                self.send_response(outer.status)
                for key, value in outer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """A bare TCP listener on 127.0.0.1 that counts the connections made to it."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stopped.set()
        self.sock.close()


class Dripper:
    """A receiver that reads the request, then answers `HTTP/1.1 200 OK` one byte every
    `interval` seconds: a per-read socket timeout never fires on it."""

    def __init__(self, interval: float):
        self.interval = interval
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/slow"
        self.requests = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.requests += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        try:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                if self.stopped.wait(self.interval):
                    break
                conn.sendall(bytes([byte]))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def make():
    """Receivers and listeners, closed after the test."""
    made = []

    def factory(kind, *args, **kwargs):
        made.append(kind(*args, **kwargs))
        return made[-1]

    yield factory
    for thing in made:
        thing.close()


def deliver(app, now=None, **changes) -> int:
    with app.app_context():
        return webhooks.deliver_due(db.session, now=now, policy=webhooks.Policy.from_config(app.config, **changes))


def attempts(client, key, hook_id) -> list[dict]:
    page = client.get(f"/webhooks/{hook_id}/deliveries", headers=auth(key)).get_json()["contents"]
    return [a for d in page for a in d["attempt_log"]]


def register(client, key, url, **extra):
    return client.post("/webhooks", json={"url": url, **extra}, headers=auth(key))


# ----------------------------------------------------------------------------- registration

REFUSED = [
    # loopback, in every IPv4 notation the C library accepts, and IPv6
    "https://127.0.0.1/",
    "https://127.255.255.254:5432/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://0x7f.1/",
    "https://017700000001/",
    "https://127.0.0.1./",
    "https://[::1]/",
    "https://localhost/",
    "https://LOCALHOST./hooks",
    # RFC 1918, link-local (the cloud metadata address), CGNAT
    "https://10.0.0.1/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://3232235777/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fe80::1]/",
    "https://100.64.0.1/",
    # unique-local, multicast, unspecified, reserved, broadcast
    "https://[fc00::1]/",
    "https://[fd12:3456::1]/",
    "https://224.0.0.1/",
    "https://[ff02::1]/",
    "https://0.0.0.0/",
    "https://0/",
    "https://[::]/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    # IPv4-mapped, NAT64 and 6to4 forms of internal addresses
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::ffff:10.0.0.1]/",
    "https://[64:ff9b::a00:1]/",
    "https://[2002:7f00:1::1]/",
    # not https, credentials, no host, a host that ends in a number but is no address
    f"http://{PUBLIC}/",
    f"ftp://{PUBLIC}/",
    f"https://user:pw@{PUBLIC}/",
    "https:///x",
    "https://999.1.1.1/",
]


def test_registration_refuses_every_internal_address_with_the_default_settings(app, client, keys):
    assert app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] is False and app.config["WEBHOOK_ALLOW_HTTP"] is False
    for url in REFUSED:
        response = register(client, keys["sender"], url)
        assert response.status_code == 422, url
        errors = response.get_json()["errors"]
        assert "url" in errors.get("json", errors), url
    listed = client.get("/webhooks", headers=auth(keys["sender"])).get_json()
    assert listed["total_items"] == 0
    # A public https address is accepted (registration only checks it; nothing connects).
    assert register(client, keys["sender"], f"https://{PUBLIC}/hooks").status_code == 201


def test_a_refusal_names_the_class_and_not_the_address(client, keys):
    response = register(client, keys["sender"], "https://169.254.169.254/")
    message = response.get_json()["message"]
    assert "link-local" in message and "169.254" not in message


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.31.0.1", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%2", "link-local"),
        ("100.127.0.1", "shared (CGNAT)"),
        ("fd00::1", "unique-local"),
        ("239.1.1.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.1.1.1", "reserved"),
        ("::ffff:192.168.0.1", "private"),
        ("192.0.2.1", "private"),
    ],
)
def test_a_name_that_resolves_to_an_internal_address_is_refused(answer, reason):
    policy = webhooks.Policy(resolve=lambda host, port: [answer])
    with pytest.raises(InvalidData) as refused:
        webhooks.check_url(f"https://{NAME}/hooks", policy)
    assert reason in refused.value.message
    # One internal answer among public ones is enough.
    mixed = webhooks.Policy(resolve=lambda host, port: [PUBLIC, answer])
    with pytest.raises(InvalidData):
        webhooks.check_url(f"https://{NAME}/hooks", mixed)
    assert webhooks.check_url(f"https://{NAME}/hooks", webhooks.Policy(resolve=lambda h, p: [PUBLIC])).host == NAME


def test_every_ipv4_notation_is_read_as_the_c_library_reads_it():
    loopback = ipaddress.IPv4Address("127.0.0.1")
    for text in ("2130706433", "0x7f000001", "0X7F000001", "0177.0.0.1", "127.1", "127.0.1", "0x7f.1", "017700000001"):
        assert webhooks.parse_ipv4(text) == loopback, text
    assert webhooks.parse_ipv4("hooks.partner.test") is None
    for text in ("999.1.1.1", "1.2.3.4.5", "08.1.1.1", "4294967296", "a.1"):
        with pytest.raises(ValueError):
            webhooks.parse_ipv4(text)


def test_a_name_that_does_not_resolve_is_refused():
    def nowhere(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(InvalidData) as refused:
        webhooks.check_url(f"https://{NAME}/", webhooks.Policy(resolve=nowhere))
    assert "does not resolve" in refused.value.message


def test_http_and_private_networks_need_their_settings(app, client, keys, make):
    receiver = make(Receiver)
    assert register(client, keys["sender"], receiver.url).status_code == 422
    app.config["WEBHOOK_ALLOW_HTTP"] = True
    assert register(client, keys["sender"], receiver.url).status_code == 422, "still a loopback address"
    app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True
    assert register(client, keys["sender"], receiver.url).status_code == 201
    # Even then: multicast, unspecified and reserved addresses are never a receiver.
    for url in ("http://224.0.0.1/", "http://0.0.0.0/", "http://[::]/", "http://255.255.255.255/"):
        assert register(client, keys["sender"], url).status_code == 422, url


def test_an_empty_event_list_is_refused(app, client, keys):
    response = register(client, keys["sender"], f"https://{PUBLIC}/hooks", events=[])
    errors = response.get_json()["errors"]
    assert response.status_code == 422 and "events" in errors.get("json", errors)
    assert client.get("/webhooks", headers=auth(keys["sender"])).get_json()["total_items"] == 0


def test_a_key_has_at_most_the_configured_number_of_webhooks(app, client, keys):
    assert app.config["WEBHOOK_MAX_PER_CLIENT"] == 5
    made = [register(client, keys["sender"], f"https://{PUBLIC}/hooks/{n}").get_json() for n in range(5)]
    sixth = register(client, keys["sender"], f"https://{PUBLIC}/hooks/6")
    assert sixth.status_code == 409
    assert "most a key may have (5)" in sixth.get_json()["message"]
    assert client.get("/webhooks", headers=auth(keys["sender"])).get_json()["total_items"] == 5
    assert register(client, keys["receiver"], f"https://{PUBLIC}/hooks").status_code == 201, "the cap is per key"
    assert client.delete(f"/webhooks/{made[0]['id']}", headers=auth(keys["sender"])).status_code == 204
    assert register(client, keys["sender"], f"https://{PUBLIC}/hooks/6").status_code == 201


# ----------------------------------------------------------------------------- delivery


def test_a_name_whose_answer_turns_internal_gets_no_connection(app, client, keys, make):
    """Registered while its name resolved to a public address; at delivery it resolves to
    loopback, where a listener waits: with the default settings nothing connects to it."""
    listener = make(Listener)
    url = f"https://{NAME}:{listener.port}/hooks"
    with app.app_context():
        owner = db.session.scalar(select(ApiClient).where(ApiClient.name == "Hartford Pediatrics"))
        hook = webhooks.create_subscription(
            db.session, owner, url, ["referral.created"], webhooks.Policy(resolve=lambda h, p: [PUBLIC])
        )
        db.session.commit()
        hook_id = str(hook.id)
    submit(client, keys)
    assert deliver(app, resolve=lambda h, p: ["127.0.0.1"]) == 1
    time.sleep(0.3)
    assert listener.connections == 0
    [attempt] = attempts(client, keys["sender"], hook_id)
    assert attempt["outcome"] == "address_refused" and attempt["status_code"] is None
    # The control: allowed to reach private networks, the same delivery does connect.
    assert (
        deliver(app, now=utcnow() + timedelta(minutes=1), resolve=lambda h, p: ["127.0.0.1"], allow_private=True) == 1
    )
    deadline = time.monotonic() + 5
    while listener.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.connections == 1


def test_the_connection_goes_to_the_checked_address_with_the_original_host(app, client, keys, make):
    allow_loopback(app)
    receiver = make(Receiver)
    lookups = []

    def rebinding(host, port):
        # A rebinding DNS server: the first answer passes the check, any later one would not.
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) % 2 else ["10.0.0.1"]

    with app.app_context():
        owner = db.session.scalar(select(ApiClient).where(ApiClient.name == "Hartford Pediatrics"))
        webhooks.create_subscription(
            db.session,
            owner,
            f"http://{NAME}:{receiver.port}/hooks",
            ["referral.created"],
            webhooks.Policy.from_config(app.config, resolve=lambda h, p: ["127.0.0.1"]),
        )
        db.session.commit()
    submit(client, keys)
    assert deliver(app, resolve=rebinding) == 1
    assert lookups == [NAME], "one look-up per attempt"
    [(_, headers, _)] = receiver.received
    assert headers["host"] == f"{NAME}:{receiver.port}"


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(app, client, keys, make):
    allow_loopback(app)
    target = make(Receiver)
    redirector = make(Receiver, status=307, headers={"Location": target.url})
    hook = register(client, keys["sender"], redirector.url).get_json()
    submit(client, keys)
    assert deliver(app) == 1
    assert len(redirector.received) == 1 and target.received == []
    [attempt] = attempts(client, keys["sender"], hook["id"])
    assert (attempt["outcome"], attempt["status_code"]) == ("http_status", 307)
    delivery = client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth(keys["sender"])).get_json()["contents"][0]
    assert delivery["status"] == "pending", "retried later"


def test_the_delivery_log_names_outcomes_never_exceptions(app, client, keys, make):
    allow_loopback(app)
    app.config["WEBHOOK_TIMEOUT_S"] = 1.0
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the connection is refused
    failing = make(Receiver, status=500)
    working = make(Receiver)
    dripper = make(Dripper, interval=0.6)
    urls = {
        "unreachable": f"http://127.0.0.1:{closed_port}/hooks",
        "http_status": failing.url,
        "delivered": working.url,
        "timeout": dripper.url,
    }
    hooks = {outcome: register(client, keys["sender"], url).get_json()["id"] for outcome, url in urls.items()}
    submit(client, keys)
    assert deliver(app) == 4
    for outcome, hook_id in hooks.items():
        page = client.get(f"/webhooks/{hook_id}/deliveries", headers=auth(keys["sender"]))
        [attempt] = [a for d in page.get_json()["contents"] for a in d["attempt_log"]]
        assert attempt["outcome"] == outcome
        text = page.get_data(as_text=True)
        for detail in ("Error", "Refused", "Errno", "Disconnected", "timed out", "socket", str(closed_port)):
            assert detail not in text, (outcome, detail)
    assert attempts(client, keys["sender"], hooks["http_status"])[0]["status_code"] == 500
    assert attempts(client, keys["sender"], hooks["unreachable"])[0]["error"] == "The receiver could not be reached."


def test_an_attempt_has_one_deadline_for_connect_send_and_read(app, client, keys, make):
    """A receiver answering one byte every second (each read well inside a 2 s timeout) is
    cut at the 2 s deadline; it would otherwise take 38 s and count as delivered."""
    allow_loopback(app)
    app.config["WEBHOOK_TIMEOUT_S"] = 2.0
    dripper = make(Dripper, interval=1.0)
    hook = register(client, keys["sender"], dripper.url).get_json()
    submit(client, keys)
    started = time.monotonic()
    assert deliver(app) == 1
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 4.5
    [attempt] = attempts(client, keys["sender"], hook["id"])
    assert attempt["outcome"] == "timeout" and 1900 <= attempt["duration_ms"] < 3500


def test_a_slow_receiver_delays_another_subscriber_by_no_more_than_the_deadline(app, client, keys, make):
    allow_loopback(app)
    timeout = 3.0
    app.config["WEBHOOK_TIMEOUT_S"] = timeout
    slow = make(Dripper, interval=1.0)
    fast = make(Receiver)
    slow_hook = register(client, keys["sender"], slow.url).get_json()
    register(client, keys["receiver"], fast.url)
    submit(client, keys)
    with app.app_context():  # the slow subscriber's delivery is first in line
        delivery = db.session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.subscription_id == uuid.UUID(slow_hook["id"]))
        )
        delivery.next_attempt_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    started = time.monotonic()
    assert deliver(app) == 2
    finished = time.monotonic() - started
    [(arrived, _, _)] = fast.received
    assert arrived - started < timeout, "the fast subscriber did not wait for the slow one"
    assert slow.requests == 1 and finished < timeout + 2
    assert attempts(client, keys["sender"], slow_hook["id"])[0]["outcome"] == "timeout"


def test_the_worker_serves_webhooks_from_a_bounded_pool(app, client, keys, make):
    allow_loopback(app)
    app.config.update(WEBHOOK_TIMEOUT_S=2.0, WEBHOOK_POOL_SIZE=2)
    slow = [make(Dripper, interval=1.0) for _ in range(3)]
    for dripper in slow:
        register(client, keys["sender"], dripper.url)
    submit(client, keys)
    started = time.monotonic()
    result = app.test_cli_runner().invoke(args=["webhooks", "run", "--once"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0 and "Attempted 3" in result.output
    # Two at a time: the third waits for a free thread (two deadlines, not one, not three).
    assert 3.8 <= elapsed < 6.5


# ----------------------------------------------------------------------------- lifecycle


def test_deleting_a_webhook_cancels_its_pending_deliveries(app, client, keys, make):
    allow_loopback(app)
    receiver = make(Receiver)
    hook = register(client, keys["sender"], receiver.url).get_json()
    submit(client, keys)
    assert client.delete(f"/webhooks/{hook['id']}", headers=auth(keys["sender"])).status_code == 204
    assert deliver(app) == 0 and receiver.received == []
    [delivery] = client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth(keys["sender"])).get_json()["contents"]
    assert delivery["status"] == "cancelled" and delivery["attempts"] == 0
    assert client.delete(f"/webhooks/{hook['id']}", headers=auth(keys["sender"])).status_code == 404


def test_revoking_a_client_cancels_its_pending_deliveries(app, client, keys, make):
    allow_loopback(app)
    receiver = make(Receiver)
    register(client, keys["sender"], receiver.url)
    submit(client, keys)
    with app.app_context():
        sender_id = db.session.scalar(select(ApiClient.id).where(ApiClient.name == "Hartford Pediatrics"))
    result = app.test_cli_runner().invoke(args=["clients", "revoke", str(sender_id)])
    assert result.exit_code == 0 and "Cancelled 1 pending webhook deliveries" in result.output
    assert deliver(app) == 0 and receiver.received == []
    with app.app_context():
        assert [d.status for d in db.session.scalars(select(WebhookDelivery))] == ["cancelled"]


def test_a_rotated_secret_is_shown_once_and_alone_signs(app, client, keys, make):
    allow_loopback(app)
    receiver = make(Receiver)
    hook = register(client, keys["sender"], receiver.url).get_json()
    submit(client, keys)  # pending before the rotation: signed with the new secret all the same
    rotated = client.post(f"/webhooks/{hook['id']}/rotate-secret", headers=auth(keys["sender"]))
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    new = rotated.get_json()["secret"]
    assert new.startswith("whsec_") and new != hook["secret"]
    listed = client.get("/webhooks", headers=auth(keys["sender"])).get_data(as_text=True)
    assert new not in listed and hook["secret"] not in listed
    assert client.post(f"/webhooks/{hook['id']}/rotate-secret", headers=auth(keys["stranger"])).status_code == 404
    assert deliver(app) == 1
    [(_, headers, raw)] = receiver.received
    stamp = int(headers["x-occh-signature"].split(",")[0].removeprefix("t="))
    assert webhooks.sign(new, stamp, raw) == headers["x-occh-signature"]
    assert webhooks.sign(hook["secret"], stamp, raw) != headers["x-occh-signature"]


def test_a_webhook_that_failed_every_attempt_for_a_day_is_disabled(app, client, keys, make):
    allow_loopback(app)
    failing = make(Receiver, status=500)
    hook = register(client, keys["sender"], failing.url).get_json()
    submit(client, keys)
    start = utcnow()
    assert deliver(app, now=start) == 1
    listed = client.get("/webhooks", headers=auth(keys["sender"])).get_json()["contents"]
    assert (listed[0]["status"], listed[0]["disabled_reason"]) == ("active", None)
    # Attempts keep failing for a day (here every few hours, each past its backoff).
    for hours in (6, 12, 18, 24):
        submit(client, keys)
        assert deliver(app, now=start + timedelta(hours=hours, seconds=1)) >= 1
    [listed] = client.get("/webhooks", headers=auth(keys["sender"])).get_json()["contents"]
    assert listed["status"] == "disabled" and listed["disabled_at"]
    assert "failed for 24 hours" in listed["disabled_reason"]
    sent = len(failing.received)
    page = client.get(f"/webhooks/{hook['id']}/deliveries?per_page=100", headers=auth(keys["sender"])).get_json()
    assert {d["status"] for d in page["contents"]} == {"cancelled"}
    submit(client, keys)
    assert deliver(app, now=start + timedelta(days=2)) == 0 and len(failing.received) == sent
    assert client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth(keys["sender"])).get_json()["total_items"] == 5


def test_a_success_resets_the_day_of_failures(app, client, keys, make):
    allow_loopback(app)
    receiver = make(Receiver, status=500)
    register(client, keys["sender"], receiver.url)
    submit(client, keys)
    start = utcnow()
    assert deliver(app, now=start) == 1
    receiver.status = 204
    submit(client, keys)
    assert deliver(app, now=start + timedelta(hours=12)) == 2
    receiver.status = 500
    submit(client, keys)
    assert deliver(app, now=start + timedelta(hours=25)) == 1
    [listed] = client.get("/webhooks", headers=auth(keys["sender"])).get_json()["contents"]
    assert listed["status"] == "active"


def test_a_result_the_database_could_not_take_is_recorded_once_it_is_back(app, client, keys, make):
    """The database goes away after an attempt and before its result is committed (as when
    PostgreSQL restarts mid-pass): the worker keeps the result and records it on its next pass,
    so the delivery is neither left claimed until its claim runs out nor sent a second time."""
    allow_loopback(app)
    receiver = make(Receiver)
    hook = register(client, keys["sender"], receiver.url).get_json()
    submit(client, keys)
    lost = {"armed": False}

    def sender(*args):
        result = webhooks.send(*args)
        lost["armed"] = True
        return result

    def before_commit(session):
        if lost["armed"]:
            lost["armed"] = False
            raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    unrecorded: list = []
    with app.app_context():
        session = db.session()
        policy = webhooks.Policy.from_config(app.config)
        event.listen(session, "before_commit", before_commit)
        try:
            with pytest.raises(OperationalError):
                webhooks.deliver_due(session, policy=policy, sender=sender, unrecorded=unrecorded)
        finally:
            event.remove(session, "before_commit", before_commit)
        assert len(receiver.received) == 1 and len(unrecorded) == 1
        db.session.remove()
        webhooks.record_unrecorded(db.session, unrecorded, policy)
        assert unrecorded == []
        db.session.remove()
    [delivery] = client.get(f"/webhooks/{hook['id']}/deliveries", headers=auth(keys["sender"])).get_json()["contents"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert deliver(app, now=utcnow() + timedelta(hours=2)) == 0 and len(receiver.received) == 1


# ----------------------------------------------------------------------------- https


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """Self-signed certificates for NAME and for another name."""
    folder = tmp_path_factory.mktemp("tls")
    made = {}
    for name in (NAME, "other.partner.test"):
        cert, key = folder / f"{name}.crt", folder / f"{name}.key"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "2",
                "-subj",
                f"/CN={name}",
                "-addext",
                f"subjectAltName=DNS:{name}",
            ],
            check=True,
            capture_output=True,
        )
        made[name] = (cert, key)
    return made


class TlsReceiver(Receiver):
    """A Receiver over TLS with the given certificate; records the SNI names it was sent."""

    def __init__(self, cert, key):
        self.server_names: list[str | None] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, server_name, ctx: self.server_names.append(server_name)
        super().__init__(tls=context)


def test_https_checks_the_certificate_against_the_host_name(app, client, keys, make, certificates):
    app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True  # https only: the default
    good = make(TlsReceiver, *certificates[NAME])
    wrong = make(TlsReceiver, *certificates["other.partner.test"])
    to_loopback = dict(resolve=lambda h, p: ["127.0.0.1"])
    with app.app_context():
        owner = db.session.scalar(select(ApiClient).where(ApiClient.name == "Hartford Pediatrics"))
        for receiver in (good, wrong):
            webhooks.create_subscription(
                db.session,
                owner,
                f"https://{NAME}:{receiver.port}/hooks",
                ["referral.created"],
                webhooks.Policy.from_config(app.config, **to_loopback),
            )
        db.session.commit()
    submit(client, keys)
    trust = ssl.create_default_context(cafile=str(certificates[NAME][0]))
    trust.load_verify_locations(cafile=str(certificates["other.partner.test"][0]))
    assert deliver(app, ssl_context=trust, **to_loopback) == 2
    assert len(good.received) == 1 and good.server_names == [NAME]
    assert good.received[0][1]["host"] == f"{NAME}:{good.port}"
    assert wrong.received == [], "a certificate for another name is refused"
    # Without the test authority (the system's trust store), the self-signed one is refused too.
    submit(client, keys)
    assert deliver(app, now=utcnow() + timedelta(hours=1), **to_loopback) >= 1
    assert len(good.received) == 1
