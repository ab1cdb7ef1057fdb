"""Generated bodies, valid-looking and hostile, posted to every write operation on both engines:
never a 5xx, and a refused request changes no row.

Each operation is one row of OPERATIONS: its path, the key that calls it, its content type and a
valid body to start from. A generated body is that body with one value replaced (by text with
NUL or a lone surrogate, a huge number, a far-off date, a wrong type, a deep nest) or a key
dropped or added, or hostile JSON text outright. Add a write operation by adding a row.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from api.extensions import db
from tests.helpers import FHIR_JSON, auth, body, bundle_for, submit

EXAMPLES = 40


@dataclass(frozen=True)
class Operation:
    name: str
    path: Callable[[dict], str]  # from the context the test sets up (a referral id)
    who: tuple[str, ...]  # the keys that may call it
    valid: Callable[[], Any]  # a body the operation would accept
    content_type: str = "application/json"
    idempotent: bool = False  # sends a fresh Idempotency-Key
    method: str = "POST"


def status_body() -> dict:
    return {"status": "accepted"}


def webhook_body() -> dict:
    return {"url": "http://127.0.0.1:9/hook", "events": ["referral.created", "referral.status_changed"]}


OPERATIONS = [
    Operation("POST /referrals", lambda ctx: "/referrals", ("sender",), body, idempotent=True),
    Operation(
        "POST /referrals/{id}/status",
        lambda ctx: f"/referrals/{ctx['referral_id']}/status",
        ("receiver", "sender"),
        status_body,
    ),
    Operation("POST /webhooks", lambda ctx: "/webhooks", ("sender", "receiver"), webhook_body),
    Operation("POST /fhir", lambda ctx: "/fhir", ("sender",), lambda: bundle_for(body()), FHIR_JSON, idempotent=True),
    Operation(
        "PATCH /fhir/Task/{id}",
        lambda ctx: f"/fhir/Task/{ctx['referral_id']}",
        ("receiver", "sender"),
        lambda: [{"op": "replace", "path": "/status", "value": "accepted"}],
        "application/json-patch+json",
        method="PATCH",
    ),
    Operation(
        "PUT /fhir/Task/{id}",
        lambda ctx: f"/fhir/Task/{ctx['referral_id']}",
        ("receiver", "sender"),
        lambda: {"resourceType": "Task", "status": "accepted", "intent": "order"},
        FHIR_JSON,
        method="PUT",
    ),
]


# ----------------------------------------------------------------------------- generated values


class Raw:
    """A JSON literal written as is (a number too long for Python's json.dumps)."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def dumps(value: Any) -> str:
    raws: list[str] = []

    def default(item):
        if isinstance(item, Raw):
            raws.append(item.literal)
            return f"@@raw{len(raws) - 1}@@"
        raise TypeError(type(item))

    out = json.dumps(value, default=default)
    for number, literal in enumerate(raws):
        out = out.replace(f'"@@raw{number}@@"', literal)
    return out


hostile_text = st.one_of(
    st.text(max_size=30),
    st.text(max_size=10).map(lambda s: s + "\x00" + s),
    st.text(max_size=10).map(lambda s: s + "\ud800"),
    st.sampled_from(
        [
            "\udfff",
            "a\ud83d",
            "",
            " ",
            "true",
            "1",
            "null",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00+14:00",
            "2999-01-01",
            "Robert'); DROP TABLE referral;--",
            "x" * 5000,
        ]
    ),
)
far_dates = st.sampled_from(
    [
        "9999-12-31T23:59:59-12:00",
        "9999-12-31",
        "0001-01-01T00:00:00+14:00",
        "1899-12-31T23:59:59Z",
        "2026-13-45",
        "99999-01-01T00:00:00Z",
    ]
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=101, max_value=6000).map(lambda n: Raw("9" * n)),
    st.sampled_from([Raw("1e999"), Raw("-1e400"), Raw("1" + "0" * 400 + ".5")]),
)
scalars = st.one_of(hostile_text, far_dates, numbers, st.booleans(), st.none())
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12,
)
deep = st.integers(min_value=60, max_value=3000).map(lambda n: Raw("[" * n + "]" * n))
replacement = st.one_of(scalars, json_values, deep)


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths_of(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths_of(child, prefix + (index,))
    return found


def changed(value: Any, path: tuple, kind: str, new: Any, key: str) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if rest:
        value[head] = changed(value[head], rest, kind, new, key)
        return value
    if kind == "drop":
        del value[head]
    elif kind == "add" and isinstance(value, dict):
        value[key] = new
    else:
        value[head] = new
    return value


@st.composite
def payloads(draw, operation: Operation) -> str | bytes:
    """JSON text: a valid body with one change (most examples), or hostile text outright."""
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(
            st.sampled_from(
                [
                    "[" * 10_000,
                    "{" * 5000,
                    '{"a":' * 200 + "1" + "}" * 200,
                    "1" * 5001,
                    "{not json",
                    "",
                    '{"status": "accepted", "status": "rejected"}',
                    b"\xff\xfe\x00",
                    "null",
                    "[]",
                    '"text"',
                    "NaN",
                ]
            )
        )
    start = operation.valid()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = paths_of(start)
        path = draw(st.sampled_from(paths)) if paths else ()
        kind = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add"]))
        start = changed(start, path, kind, draw(replacement), draw(hostile_text))
    return dumps(start)


# ----------------------------------------------------------------------------- the check


def table_digest(app) -> str:
    """Rows of every table: a count each, and the referrals' status and version."""
    digest = hashlib.sha256()
    with app.app_context():
        for table in db.metadata.sorted_tables:
            digest.update(f"{table.name}={db.session.scalar(select(func.count()).select_from(table))};".encode())
        for row in db.session.execute(text("SELECT id, status, version FROM referral ORDER BY id")):
            digest.update(repr(tuple(row)).encode())
        db.session.remove()
    return digest.hexdigest()


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_generated_bodies_never_fail_the_server_and_refusals_write_nothing(app, keys, operation):
    client = app.test_client()
    context = {"referral_id": submit(client, keys).get_json()["id"]}
    answered: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(payload=payloads(operation), who=st.sampled_from(operation.who))
    def post(payload, who):
        headers = auth(keys[who])
        if operation.idempotent:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        before = table_digest(app)
        response = client.open(
            operation.path(context),
            method=operation.method,
            data=payload,
            content_type=operation.content_type,
            headers=headers,
        )
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        assert response.status_code < 500, response.get_data(as_text=True)[:500]
        assert response.is_json, response.mimetype
        if response.status_code >= 400:
            assert table_digest(app) == before, f"a {response.status_code} changed rows"

    post()
    assert any(status >= 400 for status in answered), answered  # the hostile bodies were refused
