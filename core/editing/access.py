"""Who may write what, and the version a write names: the scopes, record ETags and
If-Match, the services and locations a `directory:write` key may change, and the guard that
keeps it from changing a location another program's service is offered at."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Forbidden, NotFound, PreconditionFailed, PreconditionRequired
from models import ApiClient, Language, Phone, Service, ServiceAtLocation

ADMIN, WRITE = "directory:admin", "directory:write"


def record_etag(record: dict) -> str:
    """The strong ETag of a record: a digest of its representation (as `GET` answers it), so
    any change that shows, by any writer (an import too), gives it a new ETag."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:32]


def check_version(record: dict, if_match: list[str] | None) -> None:
    """`record`: the record as it is now; `if_match`: the entity tags of the request's
    If-Match (None when it has none)."""
    if if_match is None:
        raise PreconditionRequired(
            "Send the record's ETag in If-Match (read the record first), so that no one else's change is overwritten."
        )
    if "*" not in if_match and record_etag(record) not in if_match:
        raise PreconditionFailed("The record changed since you read it; read it again and retry.")


def is_admin(client: ApiClient) -> bool:
    """Whether the key may write anything in the directory."""
    return ADMIN in client.scope_set


def may_edit_program(client: ApiClient, program_id: uuid.UUID | None) -> bool:
    """Whether the key may edit the services of this program."""
    return is_admin(client) or (
        WRITE in client.scope_set and program_id is not None and program_id in client.program_ids
    )


def editable_service(session: Session, client: ApiClient, service_id: uuid.UUID) -> Service:
    """The service, when this client may edit it; another program's is NotFound to a staff key
    that can see it is there but not change it: Forbidden."""
    service = session.get(Service, service_id)
    if service is None:
        raise NotFound("No service has this id.")
    if not may_edit_program(client, service.program_id):
        raise Forbidden("This key edits only the services of its own programs.")
    return service


def location_editable(session: Session, client: ApiClient, location_id: uuid.UUID) -> bool:
    """A `directory:write` key edits a location no other program's service is offered at:
    every service at it is of the key's programs, or no service is at it (a new place)."""
    programs = session.scalars(
        select(Service.program_id)
        .join(ServiceAtLocation, ServiceAtLocation.service_id == Service.id)
        .where(ServiceAtLocation.location_id == location_id)
        .distinct()
    ).all()
    return all(program_id is not None and program_id in client.program_ids for program_id in programs)


def _nested_location_ids(record: Any, kind: str) -> set[uuid.UUID]:
    """The ids of the locations a service or service at location record nests (`location`)."""
    sals = (
        [record]
        if kind == "service_at_location"
        else (record.get("service_at_locations") if isinstance(record, dict) else None)
    )
    found = set()
    for sal in sals if isinstance(sals, list) else []:
        location = sal.get("location") if isinstance(sal, dict) else None
        if isinstance(location, dict):
            try:
                found.add(uuid.UUID(str(location.get("id"))))
            except ValueError:
                pass
    return found


def _location_state(session: Session, location_id: uuid.UUID) -> tuple:
    """What a location shows (its row, addresses, phones, languages), to compare before and after."""
    from models import Address, Location

    state: list[Sequence[Any]] = [session.execute(select(Location.__table__).where(Location.id == location_id)).all()]
    for model in (Address, Phone, Language):
        state.append(
            sorted(
                map(tuple, session.execute(select(model.__table__).where(model.location_id == location_id)).all()),
                key=str,
            )
        )
    return tuple(state)


class SharedLocationsGuard:
    """A `directory:write` key's service or service at location may nest a location another
    program's service is offered at, as `GET` shows it, but not change it: `check` after the
    write raises Forbidden (the caller rolls back) if one changed."""

    def __init__(self, session: Session, client: ApiClient, record: Any, kind: str) -> None:
        self.session = session
        self.before = (
            {}
            if is_admin(client)
            else {
                location_id: _location_state(session, location_id)
                for location_id in _nested_location_ids(record, kind)
                if not location_editable(session, client, location_id)
            }
        )

    def check(self) -> None:
        self.session.flush()
        changed = [str(i) for i, state in self.before.items() if _location_state(self.session, i) != state]
        if changed:
            raise Forbidden(
                "This key may not change a location another program's service is offered at; nothing was changed.",
                {"location": [f"Shared with another program: {', '.join(sorted(changed))}."]},
            )


def may_write(session: Session, client: ApiClient, kind: str, service_id: Any, location_id: Any = None) -> bool:
    """Whether the key may write a record of this kind other than a service: an admin key
    anything; a write key a location no other program's service is offered at, and a service
    at location of its own programs' services."""
    if is_admin(client):
        return True
    if WRITE not in client.scope_set:
        return False
    if kind == "location":
        return location_id is not None and location_editable(session, client, location_id)
    if kind != "service_at_location":
        return False
    try:
        service = session.get(Service, uuid.UUID(str(service_id)))
    except ValueError:
        return False
    return service is not None and may_edit_program(client, service.program_id)


def refusal(kind: str, verb: str) -> str:
    """The Forbidden message of a write this key may not make."""
    if kind == "location":
        return f"This key may not {verb} this location: another program's service is offered there."
    return f"This key may not {verb} this record."
