"""Records other than services that the API writes: organizations, programs and taxonomy
terms by an admin key; a service at location also by the key of its service's program, and a
location by a key whose programs alone offer services there. Saved by the import's rules,
deleted with what hangs on them alone."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from core import search
from core.editing.access import SharedLocationsGuard, check_version, may_write, refusal
from core.editing.changes import changes_between
from core.editing.services import faults_as_errors, merge_patch
from core.errors import Conflict, Forbidden, InvalidData, NotFound
from core.hsds.importer import Importer
from models import (
    ApiClient,
    Attribute,
    Contact,
    Language,
    Phone,
    RecordHistory,
    Referral,
    Schedule,
    Service,
    ServiceAtLocation,
    utcnow,
)

# Records other than services that the API writes: organizations, programs and taxonomy terms
# by an admin key; a service at location also by the key of its service's program.
SERVER_FIELDS_OF = {
    "organization": ("last_modified", "programs", "services", "contacts"),
    "program": ("last_modified", "organization", "services"),
    "taxonomy_term": ("taxonomy_detail", "children", "parent"),
    "service_at_location": ("service", "distance"),
    "location": ("distance",),
}


def _model_of(kind: str):
    """The model of a kind of record."""
    from models import Location, Organization, Program, TaxonomyTerm
    from models import ServiceAtLocation as Sal

    return {
        "organization": Organization,
        "program": Program,
        "taxonomy_term": TaxonomyTerm,
        "service_at_location": Sal,
        "location": Location,
    }[kind]


def _new_record(session: Session, model, kind: str, body: dict) -> tuple[uuid.UUID, dict]:
    """The id (given or made) and record of a create; Conflict when the id is taken."""
    raw_id = body.get("id")
    try:
        record_id = uuid.UUID(str(raw_id)) if raw_id is not None else uuid.uuid4()
    except ValueError:
        raise InvalidData("The record's id is not a UUID.", {"id": ["Not a UUID."]}) from None
    if session.get(model, record_id) is not None:
        raise Conflict(f"A {kind.replace('_', ' ')} with this id exists: replace it with PUT.")
    return record_id, dict(body)


def _changed_record(
    session: Session,
    client: ApiClient,
    model,
    kind: str,
    record_id: uuid.UUID,
    body: dict,
    if_match,
    serialize: Callable[[Any], dict],
    action: str,
) -> tuple[dict, dict]:
    """The record as it is (`before`) and as a replace or merge-patch makes it, once the key may
    change it and If-Match names its version."""
    current = session.get(model, record_id)
    if current is None:
        raise NotFound(f"No {kind.replace('_', ' ')} has this id.")
    if not may_write(session, client, kind, getattr(current, "service_id", None), record_id):
        raise Forbidden(refusal(kind, "change"))
    before = serialize(current)
    check_version(before, if_match)
    if action == "patch":
        return before, merge_patch({k: v for k, v in before.items() if k not in SERVER_FIELDS_OF[kind]}, body)
    return before, dict(body)


def _import(session: Session, client: ApiClient, kind: str, record: dict) -> None:
    """Store the record (its nested records upserted by id) by the import's rules; InvalidData
    names every fault, Forbidden a shared location it would change."""
    from collections import defaultdict

    from core.hsds.profile import TABLES
    from core.hsds.readers import flatten

    guard = SharedLocationsGuard(session, client, record, kind)
    importer = Importer(session, strict=True)
    rows: dict = defaultdict(list)
    flatten(record, "body", 1, table=kind, rows=rows, report=importer.report)
    for spec in TABLES:
        if rows.get(spec.name):
            importer.add(spec, rows[spec.name], repeats=spec.name != kind)
    if importer.report.faults:
        raise InvalidData(
            "The record breaks the directory's rules; nothing was changed.", faults_as_errors(importer.report)
        )
    importer.finish()
    guard.check()


def save_record(
    session: Session,
    client: ApiClient,
    kind: str,
    record_id: uuid.UUID | None,
    body: Any,
    if_match,
    serialize: Callable[[Any], dict],
    action: str,
) -> Any:
    """Create (`record_id` None), replace or merge-patch one record, by the import's rules.
    Nested records are upserted by id (those a replace no longer lists are kept)."""
    model = _model_of(kind)
    if not isinstance(body, dict):
        raise InvalidData("The body must be a JSON object: a record.", {"json": ["Not a JSON object."]})
    before = None
    if action == "create":
        record_id, record = _new_record(session, model, kind, body)
    else:
        assert record_id is not None  # a replace or a patch names its record (the URL's id)
        before, record = _changed_record(session, client, model, kind, record_id, body, if_match, serialize, action)
    record = {key: value for key, value in record.items() if key not in SERVER_FIELDS_OF[kind]}
    if "id" in record and str(record["id"]) != str(record_id):
        raise InvalidData("The record's id is not the id of the URL.", {"id": ["Differs from the id in the URL."]})
    record["id"] = str(record_id)
    if not may_write(session, client, kind, record.get("service_id"), record_id):
        raise Forbidden(refusal(kind, "write"))
    _import(session, client, kind, record)
    session.flush()
    session.expire_all()
    saved = session.get_one(model, record_id)  # just written
    changes = changes_between(before, serialize(saved))
    if changes:
        if hasattr(saved, "last_modified") and before is not None:
            saved.last_modified = utcnow()
        session.add(
            RecordHistory(
                record_type=kind,
                record_id=record_id,
                action=action,
                client_id=client.id,
                client_name=client.name,
                at=utcnow(),
                changes=changes,
            )
        )
        session.flush()
    return saved


# What still points at a record, by kind: (what the 409 calls it, the column that points).
def _references(kind: str) -> list[tuple[str, Any]]:
    """What still points at a record of this kind: (what the 409 calls it, the column that points)."""
    from models import ApiClientProgram, Location, Organization, Program, StaffUser, TaxonomyTerm

    references: dict[str, list[tuple[str, Any]]] = {
        "organization": [
            ("services", Service.organization_id),
            ("programs", Program.organization_id),
            ("locations", Location.organization_id),
            ("organizations", Organization.parent_organization_id),
        ],
        "program": [
            ("services", Service.program_id),
            ("referrals", Referral.program_id),
            ("API keys", ApiClientProgram.program_id),
            ("staff accounts", StaffUser.program_id),
        ],
        "taxonomy_term": [
            ("categorised records", Attribute.taxonomy_term_id),
            ("taxonomy terms", TaxonomyTerm.parent_id),
        ],
        "location": [("services at locations", ServiceAtLocation.location_id)],
        "service_at_location": [],
    }
    return references[kind]


def _owned_rows(kind: str, record_id: uuid.UUID) -> list:
    """Deletes of what hangs on the record alone (its phones, contacts, addresses, schedules, ...)."""
    from models import Address, ServicePoint

    column = {
        "organization": "organization_id",
        "location": "location_id",
        "service_at_location": "service_at_location_id",
    }.get(kind)
    statements = [delete(Attribute).where(Attribute.link_id == record_id)]
    if column is None:
        return statements
    contacts = select(Contact.id).where(getattr(Contact, column) == record_id)
    statements += [delete(Phone).where(or_(getattr(Phone, column) == record_id, Phone.contact_id.in_(contacts)))]
    if kind != "organization":
        statements.append(delete(Schedule).where(getattr(Schedule, column) == record_id))
    if kind == "location":
        statements += [
            delete(Language).where(Language.location_id == record_id),
            delete(Address).where(Address.location_id == record_id),
            delete(ServicePoint).where(ServicePoint.location_id == record_id),
        ]
    statements.append(delete(Contact).where(getattr(Contact, column) == record_id))
    return statements


def delete_record(
    session: Session, client: ApiClient, kind: str, record_id: uuid.UUID, if_match, serialize: Callable[[Any], dict]
) -> None:
    """Delete an organization, program, taxonomy term, location or service at location (none of
    them has an HSDS status to mark inactive), with what hangs on it alone. Refused (Conflict,
    naming each kind of record and how many) while anything else still points at it."""
    model = _model_of(kind)
    what = kind.replace("_", " ")
    current = session.get(model, record_id)
    if current is None:
        raise NotFound(f"No {what} has this id.")
    if not may_write(session, client, kind, getattr(current, "service_id", None), record_id):
        raise Forbidden(refusal(kind, "delete"))
    before = serialize(current)
    check_version(before, if_match)
    found = {}
    for name, column in _references(kind):
        count = session.scalar(select(func.count()).select_from(column.table).where(column == record_id))
        if count:
            found[name] = count
    if found:
        listed = ", ".join(f"{count} {name}" for name, count in found.items())
        raise Conflict(
            f"The {what} is still referenced by {listed}; change or delete those first.", {"referenced_by": found}
        )
    service_id = getattr(current, "service_id", None)
    for statement in _owned_rows(kind, record_id):
        session.execute(statement.execution_options(synchronize_session=False))
    session.expire_all()  # what was loaded of the rows just deleted is gone
    session.delete(session.get(model, record_id))
    session.add(
        RecordHistory(
            record_type=kind,
            record_id=record_id,
            action="delete",
            client_id=client.id,
            client_name=client.name,
            at=utcnow(),
            changes=changes_between(before, None),
        )
    )
    session.flush()
    if service_id is not None:  # a service at location: its service is offered in one place fewer
        session.expire_all()
        service = session.get(Service, service_id)
        if service is not None:
            service.last_modified = utcnow()
            session.flush()
            search.index_service(session, service_id)
