"""The history of a record: each field that a write changed, from and to, with who and when."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound
from models import ApiClient, RecordHistory, Service, utcnow

# Not compared in a record's history (they change with every write).
UNTRACKED = ("last_modified",)


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    """A record as {dotted field: value}, nested records by id (`phones[<id>].number`)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flat(item, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list) and value and all(isinstance(item, dict) and "id" in item for item in value):
        for item in value:
            _flat(item, f"{prefix}[{item['id']}]", out)
    else:
        out[prefix] = value
    return out


def changes_between(before: dict | None, after: dict | None) -> list[dict]:
    """Each field that differs, from and to (nested records by id: `phones[<id>].number`)."""
    old = _flat(before or {}, "", {})
    new = _flat(after or {}, "", {})
    changes = []
    for name in sorted(set(old) | set(new)):
        if name.split(".")[-1] in UNTRACKED or name in UNTRACKED:
            continue
        if old.get(name) != new.get(name):
            changes.append({"field": name, "from": old.get(name), "to": new.get(name)})
    return changes


def record_history(
    session: Session,
    client: ApiClient,
    service_id: uuid.UUID,
    action: str,
    changes: list[dict],
    note: str | None = None,
) -> RecordHistory:
    """Add a RecordHistory row of a service: who, when, the action and its changes."""
    entry = RecordHistory(
        record_type="service",
        record_id=service_id,
        action=action,
        client_id=client.id,
        client_name=client.name,
        at=utcnow(),
        changes=changes,
        note=note,
    )
    session.add(entry)
    return entry


def history(session: Session, service_id: uuid.UUID) -> list[RecordHistory]:
    """A service's history, newest first (NotFound for an unknown service)."""
    if session.get(Service, service_id) is None:
        raise NotFound("No service has this id.")
    return list(
        session.scalars(
            select(RecordHistory)
            .where(RecordHistory.record_type == "service", RecordHistory.record_id == service_id)
            .order_by(RecordHistory.at.desc(), RecordHistory.id)
        )
    )
