"""What the tests share: the seed's ids, a referral body and its FHIR Bundle, request helpers,
a loopback webhook receiver. Fixtures are in conftest.py; no test module imports another."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api import examples
from api.extensions import db
from core import webhooks
from models import Referral

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {s["name"]: s for s in json.loads((ROOT / "seed_data" / "services.json").read_text())["services"]}
HMG_CT = SERVICES["Help Me Grow Connecticut"]["id"]
HMG_NATIONAL = SERVICES["Help Me Grow National Center"]["id"]
CHILD_NAME = "Zephyrine"
FAMILY_NAME = "Quillfeather"
# The relevance suites: English and Spanish queries with the services that must rank first.
QUERIES = json.loads((ROOT / "tests" / "relevance_queries.json").read_text())
SPANISH = json.loads((ROOT / "tests" / "relevance_queries_es.json").read_text(encoding="utf-8"))
OCCH = SERVICES["Care coordination"]["organization_id"]


def body(**changes) -> dict:
    """A valid `POST /referrals` body: the documented example (api.examples.REFERRAL), for the
    seed's Help Me Grow Connecticut, with `changes` replacing whole top-level fields."""
    base = copy.deepcopy(examples.REFERRAL)
    base["service_id"] = HMG_CT
    base["child"].update(given_name=CHILD_NAME, family_name=FAMILY_NAME)
    for key, value in changes.items():
        base[key] = value
    return base


def auth(key: str, **headers) -> dict:
    return {"Authorization": f"Bearer {key}", **headers}


def submit(client, keys, idem=None, who="sender", **changes):
    return client.post(
        "/referrals", json=body(**changes), headers=auth(keys[who], **{"Idempotency-Key": idem or str(uuid.uuid4())})
    )


def move(client, keys, referral_id, who, status, **extra):
    headers = auth(keys[who], **extra.pop("headers", {}))
    return client.post(f"/referrals/{referral_id}/status", json={"status": status, **extra}, headers=headers)


def count_referrals(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Referral.id)))


# A rule checked before the database is reached (query or body validation, a parser, a header):
# its test runs on one engine. Behaviour that touches the database runs on both.
one_engine = pytest.mark.parametrize("engine", ["sqlite"])


INSPECTIONS = SERVICES["Home lead and safety hazard inspections"]["id"]  # Healthy Homes
HEALTHY_HOMES_PROGRAM = SERVICES["Home lead and safety hazard inspections"]["program_id"]
ORGANIZATION = SERVICES["Home lead and safety hazard inspections"]["organization_id"]
PATCH = "application/merge-patch+json"
HELP_ME_GROW = "57308218-07a9-5d7a-9470-a68fe2831051"  # the program
FHIR_JSON = "application/fhir+json"


def read(client, service_id=INSPECTIONS):
    response = client.get(f"/services/{service_id}")
    assert response.status_code == 200
    return response.get_json(), response.headers["ETag"]


def read_at(client, path):
    response = client.get(path)
    assert response.status_code == 200
    return response.get_json(), response.headers["ETag"]


def referral_body(service_id: str) -> dict:
    return {
        "service_id": service_id,
        "child": {
            "given_name": "Zephyrine",
            "family_name": "Quillfeather",
            "birth_date": "2022-03-02",
            "town": "Hartford",
        },
        "guardian": {
            "name": "Marisol Quillfeather",
            "relationship": "mother",
            "phone": "860-555-0142",
            "contact_preference": "phone",
            "may_leave_message": True,
        },
        "consent": {
            "obtained": True,
            "obtained_by": "Dr. Ana Ruiz",
            "relationship": "mother",
            "obtained_at": "2026-11-20T15:00:00Z",
            "method": "verbal",
        },
        "reason": "Peeling paint in an old apartment.",
        "urgency": "routine",
        "referrer": {"name": "Dr. Ana Ruiz", "organization": "Hartford Pediatrics", "phone": "860-555-0100"},
    }


class Receiver:
    """A real HTTP receiver on loopback that records what it is sent; it can be 'down'."""

    def __init__(self):
        self.received: list[tuple[dict, dict]] = []
        self.down = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                raw = self.rfile.read(length)
                if outer.down:
                    self.send_response(503)
                else:
                    outer.received.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def allow_loopback(app) -> None:
    """These tests' receivers listen on 127.0.0.1 over http: allow both (refused by default)."""
    app.config.update(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True, WEBHOOK_ALLOW_HTTP=True)


def deliver(app, now=None) -> int:
    with app.app_context():
        return webhooks.deliver_due(db.session, now=now, policy=webhooks.Policy.from_config(app.config))


def bundle_for(data: dict, if_none_exist: str | None = None) -> dict:
    """A transaction Bundle carrying the same referral as the `/referrals` body `data`."""
    child, guardian, consent, referrer = data["child"], data["guardian"], data["consent"], data["referrer"]
    patient, related, agreement, request = (f"urn:uuid:{uuid.uuid4()}" for _ in range(4))
    rank = {"phone": "phone", "text": "sms", "email": "email"}.get(guardian["contact_preference"])
    telecom = [{"system": "phone", "value": guardian["phone"]}] if guardian.get("phone") else []
    if rank == "sms":
        telecom.append({"system": "sms", "value": guardian["phone"], "rank": 1})
    elif rank:
        telecom = [dict(t, rank=1) if t["system"] == rank else t for t in telecom]
    if guardian.get("email"):
        telecom.append({"system": "email", "value": guardian["email"], **({"rank": 1} if rank == "email" else {})})
    post = {"method": "POST"}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": request,
                "resource": {
                    "resourceType": "ServiceRequest",
                    "contained": [
                        {
                            "resourceType": "PractitionerRole",
                            "id": "referrer",
                            "practitioner": {"display": referrer["name"]},
                            "organization": {"display": referrer["organization"]},
                            "telecom": [{"system": "phone", "value": referrer["phone"]}],
                        }
                    ],
                    "status": "active",
                    "intent": "order",
                    "priority": data["urgency"],
                    "subject": {"reference": patient},
                    "requester": {"reference": "#referrer"},
                    "performer": [{"reference": f"HealthcareService/{data['service_id']}"}],
                    "reasonCode": [{"text": data["reason"]}],
                    "supportingInfo": [{"reference": related}, {"reference": agreement}],
                },
                "request": {
                    **post,
                    "url": "ServiceRequest",
                    **({"ifNoneExist": if_none_exist} if if_none_exist else {}),
                },
            },
            {
                "fullUrl": patient,
                "resource": {
                    "resourceType": "Patient",
                    "name": [{"use": "official", "family": child["family_name"], "given": [child["given_name"]]}],
                    "birthDate": child["birth_date"],
                    "address": [{"city": child["town"]}],
                },
                "request": {**post, "url": "Patient"},
            },
            {
                "fullUrl": related,
                "resource": {
                    "resourceType": "RelatedPerson",
                    "extension": [
                        {
                            "url": "https://www.connecticutchildrens.org/fhir/occh/StructureDefinition/may-leave-message",
                            "valueBoolean": guardian["may_leave_message"],
                        }
                    ],
                    "patient": {"reference": patient},
                    "relationship": [
                        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}
                    ],
                    "name": [{"text": guardian["name"]}],
                    "telecom": telecom,
                    "communication": [
                        {
                            "language": {
                                "coding": [{"system": "urn:ietf:bcp:47", "code": guardian["preferred_language"]}]
                            },
                            "preferred": True,
                        }
                    ],
                },
                "request": {**post, "url": "RelatedPerson"},
            },
            {
                "fullUrl": agreement,
                "resource": {
                    "resourceType": "Consent",
                    "extension": [
                        {
                            "url": "https://www.connecticutchildrens.org/fhir/occh/StructureDefinition/referral-consent",
                            "extension": [
                                {"url": "obtainedBy", "valueString": consent["obtained_by"]},
                                {"url": "method", "valueCode": consent["method"]},
                            ],
                        }
                    ],
                    "status": "active" if consent["obtained"] else "rejected",
                    "scope": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
                        ]
                    },
                    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                    "patient": {"reference": patient},
                    "dateTime": consent["obtained_at"],
                    "performer": [{"reference": related}],
                },
                "request": {**post, "url": "Consent"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Task",
                    "status": "requested",
                    "intent": "order",
                    "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
                    "focus": {"reference": request},
                    "for": {"reference": patient},
                    "owner": {"reference": f"Organization/{HELP_ME_GROW}"},
                },
                "request": {**post, "url": "Task"},
            },
        ],
    }


def post_bundle(client, keys, bundle, key: str | None = "bundle-1", who="sender"):
    headers = auth(keys[who], **({"Idempotency-Key": key} if key else {}))
    return client.post("/fhir", json=bundle, headers=headers, content_type=FHIR_JSON)


# ----------------------------------------------------------------------------- servers

# What a load balancer passes on: the public host, the same for every instance.
PUBLIC_HOST = "directory.example.org"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Instance:
    """`gunicorn wsgi:app` as `make serve` runs it, in a process of its own."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
                "wsgi:app",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited with {self.process.returncode}; see {self.log.name}"
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"gunicorn on port {self.port} did not get ready; see {self.log.name}")

    def request(self, method: str, path: str, headers: dict | None = None, payload: dict | None = None):
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {"Host": PUBLIC_HOST, **({"Content-Type": "application/json"} if data else {}), **(headers or {})}
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@contextlib.contextmanager
def two_instances(database_url: str, env: dict[str, str], logs: Path):
    """Two gunicorn instances (`Instance`) on `database_url` with `env`, ready, and an admin app
    (a third process's view of the same database); all stopped and disposed of afterwards."""
    from api import config as api_config
    from api import create_app

    instances = [Instance({"DATABASE_URL": database_url, **env}, logs / f"gunicorn-{name}.log") for name in "ab"]
    admin = create_app(api_config.TestConfig(database_url))
    try:
        for instance in instances:
            instance.wait_ready()
        yield (*instances, admin)
    finally:
        for instance in instances:
            instance.stop()
        with admin.app_context():
            db.session.remove()
            db.engine.dispose()
