"""Writing services: create, replace, merge-patch and retire a service by the rules of
`flask hsds import`, verify it, and list those nobody verified lately."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from core import search
from core.editing.access import SharedLocationsGuard, check_version, editable_service, is_admin, may_edit_program
from core.editing.changes import changes_between, record_history
from core.errors import Conflict, Forbidden, InvalidData
from core.hsds.importer import Importer
from core.hsds.readers import add_records
from models import (
    ApiClient,
    Attribute,
    Contact,
    Language,
    Phone,
    Referral,
    ReferralContactPoint,
    Schedule,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    utcnow,
)

# Fields of a service record the server keeps: sent back in a PUT or PATCH they are ignored.
SERVER_FIELDS = (
    "last_modified",
    "assured_date",
    "assurer_email",
    "capacities",
    "distance",
    "organization",
    "program",
)

Serializer = Callable[[Service], dict]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def faults_as_errors(report) -> dict[str, list[str]]:
    """The import report's faults as field errors (faults that only follow from another are left out)."""
    errors: dict[str, list[str]] = {}
    for fault in report.faults:
        if fault.dependent:
            continue
        errors.setdefault(fault.field, []).append(fault.message)
    return errors


def _listed_ids(record: dict, key: str, inner: str | None = None) -> set[uuid.UUID]:
    """The ids a record lists under `key` (or under `inner` of each of those), malformed ones skipped."""
    found = set()
    outer = record.get(key)
    for item in outer if isinstance(outer, list) else []:
        if not isinstance(item, dict):
            continue
        items = item.get(inner) if inner else [item]
        for sub in items if isinstance(items, list) else []:
            try:
                found.add(uuid.UUID(str(sub.get("id"))))
            except (ValueError, AttributeError):
                pass
    return found


def _area_deletes(service_id: uuid.UUID, record: dict) -> list:
    """Deletes of the service areas (and their towns) a full record no longer lists, and of the
    towns each area it lists no longer names."""
    keep_areas = _listed_ids(record, "service_areas")
    area_ids = select(ServiceArea.id).where(ServiceArea.service_id == service_id)
    statements = [
        delete(ServiceAreaTown).where(
            ServiceAreaTown.service_area_id.in_(area_ids), ServiceAreaTown.service_area_id.not_in(keep_areas)
        )
    ]
    areas = record.get("service_areas")
    for area in areas if isinstance(areas, list) else []:
        if isinstance(area, dict) and isinstance(area.get("towns"), list):
            try:
                area_id = uuid.UUID(str(area.get("id")))
            except ValueError:
                continue
            towns = [town for town in area["towns"] if isinstance(town, str)]
            statements.append(
                delete(ServiceAreaTown).where(
                    ServiceAreaTown.service_area_id == area_id, ServiceAreaTown.town.not_in(towns)
                )
            )
    statements.append(
        delete(ServiceArea).where(ServiceArea.service_id == service_id, ServiceArea.id.not_in(keep_areas))
    )
    return statements


def _drop_children_not_in(session: Session, service_id: uuid.UUID, record: dict) -> None:
    """A full record replaces what hangs on the service: rows it no longer lists are removed."""

    def ids(key: str, inner: str | None = None) -> set[uuid.UUID]:
        return _listed_ids(record, key, inner)

    sal_ids = select(ServiceAtLocation.id).where(ServiceAtLocation.service_id == service_id)
    contact_ids = select(Contact.id).where(Contact.service_id == service_id)
    keep_phones = ids("phones") | ids("contacts", "phones") | ids("service_at_locations", "phones")
    keep_schedules = ids("schedules") | ids("service_at_locations", "schedules")
    keep_contacts = ids("contacts") | ids("service_at_locations", "contacts")
    statements = [
        delete(Phone).where(
            or_(
                Phone.service_id == service_id,
                Phone.contact_id.in_(contact_ids),
                Phone.service_at_location_id.in_(sal_ids),
            ),
            Phone.id.not_in(keep_phones),
        ),
        delete(Schedule).where(
            or_(Schedule.service_id == service_id, Schedule.service_at_location_id.in_(sal_ids)),
            Schedule.id.not_in(keep_schedules),
        ),
        delete(Language).where(Language.service_id == service_id, Language.id.not_in(ids("languages"))),
        delete(ReferralContactPoint).where(
            ReferralContactPoint.service_id == service_id,
            ReferralContactPoint.id.not_in(ids("referral_contact_points")),
        ),
        delete(Attribute).where(
            Attribute.link_entity == "service", Attribute.link_id == service_id, Attribute.id.not_in(ids("attributes"))
        ),
        delete(Contact).where(
            or_(Contact.service_id == service_id, Contact.service_at_location_id.in_(sal_ids)),
            Contact.id.not_in(keep_contacts),
        ),
        delete(ServiceAtLocation).where(
            ServiceAtLocation.service_id == service_id, ServiceAtLocation.id.not_in(ids("service_at_locations"))
        ),
    ]
    for statement in statements + _area_deletes(service_id, record):
        session.execute(statement.execution_options(synchronize_session=False))


def _prepared(record: Any, service_id: uuid.UUID) -> dict:
    """The record as written: an object without the server's fields, with the id of the URL."""
    if not isinstance(record, dict):
        raise InvalidData("The body must be a JSON object: a service record.", {"json": ["Not a JSON object."]})
    record = {key: value for key, value in record.items() if key not in SERVER_FIELDS}
    if "id" in record and str(record["id"]) != str(service_id):
        raise InvalidData("The record's id is not the id of the URL.", {"id": ["Differs from the id in the URL."]})
    record["id"] = str(service_id)
    return record


def _write(session: Session, client: ApiClient, service_id: uuid.UUID, record: dict, exists: bool) -> None:
    """Check the record with the import's rules and store it; InvalidData names every fault."""
    program_id = record.get("program_id")
    try:
        program_uuid = uuid.UUID(str(program_id)) if program_id is not None else None
    except ValueError:
        program_uuid = None  # the import names the fault
    if program_id is not None and program_uuid is not None and not may_edit_program(client, program_uuid):
        raise Forbidden(
            "This key edits only the services of its own programs.", {"program_id": ["Not a program of this key."]}
        )
    if program_id is None and not is_admin(client):
        raise InvalidData("A service of a program key names its program.", {"program_id": ["Required for this key."]})
    guard = SharedLocationsGuard(session, client, record, "service")
    if exists:
        _drop_children_not_in(session, service_id, record)
    importer = Importer(session, strict=True)
    add_records(importer, "body", [(1, record)])
    if importer.report.faults:
        raise InvalidData(
            "The record breaks the directory's rules; nothing was changed.", faults_as_errors(importer.report)
        )
    importer.finish()
    guard.check()


def _after_write(
    session: Session, client: ApiClient, service_id: uuid.UUID, before: dict | None, serialize: Serializer, action: str
) -> tuple[Service, bool]:
    """The service as written, and whether it changed: when it did, its last_modified, its
    history and its search index follow."""
    session.flush()
    session.expire_all()
    service = session.get_one(Service, service_id)  # just written
    changes = changes_between(before, serialize(service))
    if changes:
        service.last_modified = utcnow()
        record_history(session, client, service_id, action, changes)
        session.flush()
        search.index_service(session, service_id)
    return service, bool(changes)


def create_service(session: Session, client: ApiClient, record: Any, serialize: Serializer) -> Service:
    """A new service from a full record (its id given or made)."""
    raw_id = record.get("id") if isinstance(record, dict) else None
    try:
        service_id = uuid.UUID(str(raw_id)) if raw_id is not None else uuid.uuid4()
    except ValueError:
        raise InvalidData("The record's id is not a UUID.", {"id": ["Not a UUID."]}) from None
    if session.get(Service, service_id) is not None:
        raise Conflict("A service with this id exists: replace it with PUT.")
    record = _prepared(record, service_id)
    record.setdefault("status", "active")
    _write(session, client, service_id, record, exists=False)
    service, _ = _after_write(session, client, service_id, None, serialize, "create")
    return service


def replace_service(
    session: Session,
    client: ApiClient,
    service_id: uuid.UUID,
    record: Any,
    if_match,
    serialize: Serializer,
    action: str = "replace",
) -> Service:
    """Replace a service with a full record: what it no longer lists is removed."""
    service = editable_service(session, client, service_id)
    before = serialize(service)
    check_version(before, if_match)
    record = _prepared(record, service_id)
    _write(session, client, service_id, record, exists=True)
    service, _ = _after_write(session, client, service_id, before, serialize, action)
    return service


def patch_service(
    session: Session, client: ApiClient, service_id: uuid.UUID, patch: Any, if_match, serialize: Serializer
) -> Service:
    """Change a service by a JSON Merge Patch of its record (RFC 7396)."""
    service = editable_service(session, client, service_id)
    check_version(serialize(service), if_match)
    if not isinstance(patch, dict):
        raise InvalidData("A merge patch of a record is a JSON object.", {"json": ["Not a JSON object."]})
    current = {key: value for key, value in serialize(service).items() if key not in SERVER_FIELDS}
    return replace_service(session, client, service_id, merge_patch(current, patch), if_match, serialize, "patch")


def retire_service(
    session: Session, client: ApiClient, service_id: uuid.UUID, if_match, serialize: Serializer
) -> Service:
    """Mark a service inactive; refused while referrals to it are open."""
    service = editable_service(session, client, service_id)
    before = serialize(service)
    check_version(before, if_match)
    from core.referrals import OPEN  # the lifecycle's open statuses (core.referrals imports this package)

    open_count = session.scalar(
        select(func.count(Referral.id)).where(Referral.service_id == service_id, Referral.status.in_(OPEN))
    )
    if open_count:
        raise Conflict(
            f"The service has {open_count} open referral{'s' if open_count != 1 else ''}; close them first.",
            {"open_referrals": open_count},
        )
    service.status = "inactive"
    service, _ = _after_write(session, client, service_id, before, serialize, "delete")
    return service


def verify_service(
    session: Session,
    client: ApiClient,
    service_id: uuid.UUID,
    if_match,
    note: str | None,
    serialize: Serializer,
    today: date | None = None,
) -> Service:
    """A person checked the whole record today: HSDS assured_date and assurer_email, nothing else."""
    service = editable_service(session, client, service_id)
    check_version(serialize(service), if_match)
    today = today or utcnow().date()
    changes = changes_between(
        {"assured_date": _iso(service.assured_date), "assurer_email": service.assurer_email},
        {"assured_date": today.isoformat(), "assurer_email": client.email},
    )
    service.assured_date = today
    service.assurer_email = client.email
    record_history(session, client, service_id, "verify", changes, note)
    session.flush()
    return service


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def stale_services(session: Session, before: date) -> list[Service]:
    """Active services nobody verified on or after `before` (never verified included)."""
    return list(
        session.scalars(
            select(Service)
            .where(Service.status == "active", or_(Service.assured_date.is_(None), Service.assured_date < before))
            .order_by(Service.assured_date.is_not(None), Service.assured_date, Service.name)
        )
    )
