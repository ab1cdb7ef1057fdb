"""Program staff keep the directory true: create, replace, patch and retire services, verify
them and set their capacity, through the API.

Every write here:
- is checked by the rules of `flask hsds import` (core.hsds.importer.Importer, on the record
  flattened the same way): a fault is an InvalidData naming each field, and the caller rolls
  back, so nothing changes;
- names the version it changes (`if_match`, the record's ETag): none is PreconditionRequired,
  an older one PreconditionFailed;
- gives the record a new ETag (a digest of what it shows), is reindexed for search before it returns, writes one
  RecordHistory row (who, when, each field from and to), and changes the data version
  (core.directory_version notices the ORM and Core writes of the transaction).

Who may write: a `directory:admin` key anything; a `directory:write` key only the services of
its own programs (and what hangs on them). The caller owns the transaction.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any, Callable

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from core import search
from core.errors import Conflict, Forbidden, InvalidData, NotFound, PreconditionFailed, PreconditionRequired
from core.hsds.importer import Importer
from core.hsds.readers import add_records
from models import (
    ApiClient,
    Attribute,
    Contact,
    Language,
    Phone,
    RecordHistory,
    Referral,
    ReferralContactPoint,
    Schedule,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    utcnow,
)
from models.vocab import CAPACITY_STATUSES

ADMIN, WRITE = "directory:admin", "directory:write"
# Fields of a service record the server keeps: sent back in a PUT or PATCH they are ignored.
SERVER_FIELDS = (
    "last_modified", "assured_date", "assurer_email", "capacities", "distance", "organization", "program",
)
# Not compared in a record's history (they change with every write).
UNTRACKED = ("last_modified",)
OPEN_REFERRALS = ("requested", "accepted", "in-progress", "on-hold")
# Statuses under which a service takes new clients (`accepting_new=true`): now, or onto its waitlist.
ACCEPTING_NEW = ("capacity", "waitlist")

Serializer = Callable[[Service], dict]
# Set from the app's configuration (CAPACITY_STALE_DAYS) by api.create_app.
settings = {"capacity_stale_days": 30}


# --------------------------------------------------------------------------- versions and access


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
    return ADMIN in client.scope_set


def may_edit_program(client: ApiClient, program_id: uuid.UUID | None) -> bool:
    return is_admin(client) or (WRITE in client.scope_set and program_id is not None and program_id in client.program_ids)


def editable_service(session: Session, client: ApiClient, service_id: uuid.UUID) -> Service:
    """The service, when this client may edit it; another program's is NotFound to a staff key
    that can see it is there but not change it: Forbidden."""
    service = session.get(Service, service_id)
    if service is None:
        raise NotFound("No service has this id.")
    if not may_edit_program(client, service.program_id):
        raise Forbidden("This key edits only the services of its own programs.")
    return service


# --------------------------------------------------------------------------- history


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
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


def _history(session: Session, client: ApiClient, service_id: uuid.UUID, action: str, changes: list[dict],
             note: str | None = None) -> RecordHistory:
    entry = RecordHistory(
        record_type="service", record_id=service_id, action=action, client_id=client.id, client_name=client.name,
        at=utcnow(), changes=changes, note=note,
    )
    session.add(entry)
    return entry


def history(session: Session, service_id: uuid.UUID) -> list[RecordHistory]:
    if session.get(Service, service_id) is None:
        raise NotFound("No service has this id.")
    return list(
        session.scalars(
            select(RecordHistory)
            .where(RecordHistory.record_type == "service", RecordHistory.record_id == service_id)
            .order_by(RecordHistory.at.desc(), RecordHistory.id)
        )
    )


# --------------------------------------------------------------------------- writing records


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


def _faults_as_errors(report) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for fault in report.faults:
        if fault.dependent:
            continue
        errors.setdefault(fault.field, []).append(fault.message)
    return errors


def _drop_children_not_in(session: Session, service_id: uuid.UUID, record: dict) -> None:
    """A full record replaces what hangs on the service: rows it no longer lists are removed."""

    def ids(key: str, inner: str | None = None) -> set[uuid.UUID]:
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

    sal_ids = select(ServiceAtLocation.id).where(ServiceAtLocation.service_id == service_id)
    contact_ids = select(Contact.id).where(Contact.service_id == service_id)
    keep_sal, keep_contacts, keep_areas = ids("service_at_locations"), ids("contacts"), ids("service_areas")
    keep_phones = ids("phones") | ids("contacts", "phones") | ids("service_at_locations", "phones")
    keep_schedules = ids("schedules") | ids("service_at_locations", "schedules")
    keep_contacts |= ids("service_at_locations", "contacts")
    statements = [
        delete(Phone).where(
            or_(Phone.service_id == service_id, Phone.contact_id.in_(contact_ids), Phone.service_at_location_id.in_(sal_ids)),
            Phone.id.not_in(keep_phones),
        ),
        delete(Schedule).where(
            or_(Schedule.service_id == service_id, Schedule.service_at_location_id.in_(sal_ids)),
            Schedule.id.not_in(keep_schedules),
        ),
        delete(Language).where(Language.service_id == service_id, Language.id.not_in(ids("languages"))),
        delete(ReferralContactPoint).where(
            ReferralContactPoint.service_id == service_id, ReferralContactPoint.id.not_in(ids("referral_contact_points"))
        ),
        delete(Attribute).where(
            Attribute.link_entity == "service", Attribute.link_id == service_id, Attribute.id.not_in(ids("attributes"))
        ),
        delete(Contact).where(
            or_(Contact.service_id == service_id, Contact.service_at_location_id.in_(sal_ids)),
            Contact.id.not_in(keep_contacts),
        ),
        delete(ServiceAtLocation).where(ServiceAtLocation.service_id == service_id, ServiceAtLocation.id.not_in(keep_sal)),
    ]
    area_ids = select(ServiceArea.id).where(ServiceArea.service_id == service_id)
    statements.append(
        delete(ServiceAreaTown).where(ServiceAreaTown.service_area_id.in_(area_ids), ServiceAreaTown.service_area_id.not_in(keep_areas))
    )
    areas = record.get("service_areas")
    for area in areas if isinstance(areas, list) else []:
        if isinstance(area, dict) and isinstance(area.get("towns"), list):
            try:
                area_id = uuid.UUID(str(area.get("id")))
            except ValueError:
                continue
            towns = [town for town in area["towns"] if isinstance(town, str)]
            statements.append(
                delete(ServiceAreaTown).where(ServiceAreaTown.service_area_id == area_id, ServiceAreaTown.town.not_in(towns))
            )
    statements.append(delete(ServiceArea).where(ServiceArea.service_id == service_id, ServiceArea.id.not_in(keep_areas)))
    for statement in statements:
        session.execute(statement.execution_options(synchronize_session=False))


def _prepared(record: Any, service_id: uuid.UUID) -> dict:
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
        raise Forbidden("This key edits only the services of its own programs.", {"program_id": ["Not a program of this key."]})
    if program_id is None and not is_admin(client):
        raise InvalidData("A service of a program key names its program.", {"program_id": ["Required for this key."]})
    guard = SharedLocationsGuard(session, client, record, "service")
    if exists:
        _drop_children_not_in(session, service_id, record)
    importer = Importer(session, strict=True)
    add_records(importer, "body", [(1, record)])
    if importer.report.faults:
        raise InvalidData("The record breaks the directory's rules; nothing was changed.", _faults_as_errors(importer.report))
    importer.finish()
    guard.check()


def _after_write(session: Session, client: ApiClient, service_id: uuid.UUID, before: dict | None,
                 serialize: Serializer, action: str) -> tuple[Service, bool]:
    session.flush()
    session.expire_all()
    service = session.get(Service, service_id)
    changes = changes_between(before, serialize(service))
    if changes:
        service.last_modified = utcnow()
        _history(session, client, service_id, action, changes)
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


def replace_service(session: Session, client: ApiClient, service_id: uuid.UUID, record: Any, if_match,
                    serialize: Serializer, action: str = "replace") -> Service:
    """Replace a service with a full record: what it no longer lists is removed."""
    service = editable_service(session, client, service_id)
    before = serialize(service)
    check_version(before, if_match)
    record = _prepared(record, service_id)
    _write(session, client, service_id, record, exists=True)
    service, _ = _after_write(session, client, service_id, before, serialize, action)
    return service


def patch_service(session: Session, client: ApiClient, service_id: uuid.UUID, patch: Any, if_match,
                  serialize: Serializer) -> Service:
    """Change a service by a JSON Merge Patch of its record (RFC 7396)."""
    service = editable_service(session, client, service_id)
    check_version(serialize(service), if_match)
    if not isinstance(patch, dict):
        raise InvalidData("A merge patch of a record is a JSON object.", {"json": ["Not a JSON object."]})
    current = {key: value for key, value in serialize(service).items() if key not in SERVER_FIELDS}
    return replace_service(session, client, service_id, merge_patch(current, patch), if_match, serialize, "patch")


def retire_service(session: Session, client: ApiClient, service_id: uuid.UUID, if_match, serialize: Serializer) -> Service:
    """Mark a service inactive; refused while referrals to it are open."""
    service = editable_service(session, client, service_id)
    before = serialize(service)
    check_version(before, if_match)
    open_count = session.scalar(
        select(func.count(Referral.id)).where(Referral.service_id == service_id, Referral.status.in_(OPEN_REFERRALS))
    )
    if open_count:
        raise Conflict(
            f"The service has {open_count} open referral{'s' if open_count != 1 else ''}; close them first.",
            {"open_referrals": open_count},
        )
    service.status = "inactive"
    service, _ = _after_write(session, client, service_id, before, serialize, "delete")
    return service


# --------------------------------------------------------------------------- verification


def verify_service(session: Session, client: ApiClient, service_id: uuid.UUID, if_match, note: str | None,
                   serialize: Serializer, today: date | None = None) -> Service:
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
    _history(session, client, service_id, "verify", changes, note)
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


# --------------------------------------------------------------------------- capacity

CAPACITY_FIELDS = {
    "status": "capacity_status", "available": "capacity_available", "maximum": "capacity_maximum",
    "unit": "capacity_unit", "expected_wait_days": "capacity_wait_days", "description": "capacity_description",
}


def set_capacity(session: Session, client: ApiClient, service_id: uuid.UUID, if_match, data: dict,
                 serialize: Serializer) -> Service:
    """Set a service's availability: an SDOH capacity status, optional counts and an expected wait."""
    service = editable_service(session, client, service_id)
    check_version(serialize(service), if_match)
    errors: dict[str, list[str]] = {}
    if data.get("status") not in CAPACITY_STATUSES:
        errors["status"] = [f"One of: {', '.join(CAPACITY_STATUSES)}."]
    available, maximum = data.get("available"), data.get("maximum")
    if available is not None and maximum is not None and available > maximum:
        errors["available"] = ["More than maximum."]
    if (available is not None or maximum is not None) and not data.get("unit"):
        errors["unit"] = ["Counts need a unit (e.g. families, appointments)."]
    if errors:
        raise InvalidData("The capacity is not valid; nothing was changed.", errors)
    before = {name: getattr(service, column) for name, column in CAPACITY_FIELDS.items()}
    for name, column in CAPACITY_FIELDS.items():
        setattr(service, column, data.get(name))
    service.capacity_updated = utcnow()
    after = {name: getattr(service, column) for name, column in CAPACITY_FIELDS.items()}
    _history(session, client, service_id, "capacity", changes_between({"capacity": before}, {"capacity": after}))
    session.flush()
    search.index_service(session, service_id)
    return service


def capacity_status(service: Service, stale_days: int | None = None, now: datetime | None = None) -> str:
    """The status as served: `unknown` when none was set or it is older than `stale_days`."""
    stale_days = settings["capacity_stale_days"] if stale_days is None else stale_days
    if service.capacity_status is None or service.capacity_updated is None:
        return "unknown"
    if service.capacity_updated < (now or utcnow()) - timedelta(days=stale_days):
        return "unknown"
    return service.capacity_status


def fresh_capacity_condition(statuses: tuple[str, ...], stale_days: int, now: datetime | None = None):
    """SQL: the service's status is one of `statuses` and not stale."""
    since = (now or utcnow()) - timedelta(days=stale_days)
    return and_(Service.capacity_status.in_(statuses), Service.capacity_updated >= since)


# --------------------------------------------------------------------------- other records

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
    from models import Location, Organization, Program, ServiceAtLocation as Sal, TaxonomyTerm

    return {"organization": Organization, "program": Program, "taxonomy_term": TaxonomyTerm, "service_at_location": Sal,
            "location": Location}[kind]


def location_editable(session: Session, client: ApiClient, location_id: uuid.UUID) -> bool:
    """A `directory:write` key edits a location no other program's service is offered at:
    every service at it is of the key's programs, or no service is at it (a new place)."""
    programs = session.scalars(
        select(Service.program_id).join(ServiceAtLocation, ServiceAtLocation.service_id == Service.id)
        .where(ServiceAtLocation.location_id == location_id).distinct()
    ).all()
    return all(program_id is not None and program_id in client.program_ids for program_id in programs)


def _nested_location_ids(record: Any, kind: str) -> set[uuid.UUID]:
    """The ids of the locations a service or service at location record nests (`location`)."""
    sals = [record] if kind == "service_at_location" else (record.get("service_at_locations") if isinstance(record, dict) else None)
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

    state = [session.execute(select(Location.__table__).where(Location.id == location_id)).all()]
    for model in (Address, Phone, Language):
        state.append(sorted(map(tuple, session.execute(
            select(model.__table__).where(model.location_id == location_id)).all()), key=str))
    return tuple(state)


class SharedLocationsGuard:
    """A `directory:write` key's service or service at location may nest a location another
    program's service is offered at, as `GET` shows it, but not change it: `check` after the
    write raises Forbidden (the caller rolls back) if one changed."""

    def __init__(self, session: Session, client: ApiClient, record: Any, kind: str) -> None:
        self.session = session
        self.before = {} if is_admin(client) else {
            location_id: _location_state(session, location_id)
            for location_id in _nested_location_ids(record, kind)
            if not location_editable(session, client, location_id)
        }

    def check(self) -> None:
        self.session.flush()
        changed = [str(i) for i, state in self.before.items() if _location_state(self.session, i) != state]
        if changed:
            raise Forbidden(
                "This key may not change a location another program's service is offered at; nothing was changed.",
                {"location": [f"Shared with another program: {', '.join(sorted(changed))}."]},
            )


def _may_write(session: Session, client: ApiClient, kind: str, service_id: Any, location_id: Any = None) -> bool:
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


def _refusal(kind: str, verb: str) -> str:
    if kind == "location":
        return f"This key may not {verb} this location: another program's service is offered there."
    return f"This key may not {verb} this record."


def save_record(session: Session, client: ApiClient, kind: str, record_id: uuid.UUID | None, body: Any, if_match,
                serialize: Callable[[Any], dict], action: str) -> Any:
    """Create (`record_id` None), replace or merge-patch one record, by the import's rules.
    Nested records are upserted by id (those a replace no longer lists are kept)."""
    model = _model_of(kind)
    if not isinstance(body, dict):
        raise InvalidData("The body must be a JSON object: a record.", {"json": ["Not a JSON object."]})
    before = None
    if action == "create":
        raw_id = body.get("id")
        try:
            record_id = uuid.UUID(str(raw_id)) if raw_id is not None else uuid.uuid4()
        except ValueError:
            raise InvalidData("The record's id is not a UUID.", {"id": ["Not a UUID."]}) from None
        if session.get(model, record_id) is not None:
            raise Conflict(f"A {kind.replace('_', ' ')} with this id exists: replace it with PUT.")
        record = dict(body)
    else:
        current = session.get(model, record_id)
        if current is None:
            raise NotFound(f"No {kind.replace('_', ' ')} has this id.")
        if not _may_write(session, client, kind, getattr(current, "service_id", None), record_id):
            raise Forbidden(_refusal(kind, "change"))
        before = serialize(current)
        check_version(before, if_match)
        if action == "patch":
            record = merge_patch({k: v for k, v in before.items() if k not in SERVER_FIELDS_OF[kind]}, body)
        else:
            record = dict(body)
    record = {key: value for key, value in record.items() if key not in SERVER_FIELDS_OF[kind]}
    if "id" in record and str(record["id"]) != str(record_id):
        raise InvalidData("The record's id is not the id of the URL.", {"id": ["Differs from the id in the URL."]})
    record["id"] = str(record_id)
    if not _may_write(session, client, kind, record.get("service_id"), record_id):
        raise Forbidden(_refusal(kind, "write"))
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
        raise InvalidData("The record breaks the directory's rules; nothing was changed.", _faults_as_errors(importer.report))
    importer.finish()
    guard.check()
    session.flush()
    session.expire_all()
    saved = session.get(model, record_id)
    changes = changes_between(before, serialize(saved))
    if changes:
        if hasattr(saved, "last_modified") and before is not None:
            saved.last_modified = utcnow()
        session.add(RecordHistory(record_type=kind, record_id=record_id, action=action, client_id=client.id,
                                  client_name=client.name, at=utcnow(), changes=changes))
        session.flush()
    return saved


# --------------------------------------------------------------------------- deleting other records

# What still points at a record, by kind: (what the 409 calls it, the column that points).
def _references(kind: str) -> list[tuple[str, Any]]:
    from models import ApiClientProgram, Location, Organization, Program, StaffUser, TaxonomyTerm

    return {
        "organization": [
            ("services", Service.organization_id), ("programs", Program.organization_id),
            ("locations", Location.organization_id), ("organizations", Organization.parent_organization_id),
        ],
        "program": [
            ("services", Service.program_id), ("referrals", Referral.program_id),
            ("API keys", ApiClientProgram.program_id), ("staff accounts", StaffUser.program_id),
        ],
        "taxonomy_term": [("categorised records", Attribute.taxonomy_term_id), ("taxonomy terms", TaxonomyTerm.parent_id)],
        "location": [("services at locations", ServiceAtLocation.location_id)],
        "service_at_location": [],
    }[kind]


def _owned_rows(kind: str, record_id: uuid.UUID) -> list:
    """Deletes of what hangs on the record alone (its phones, contacts, addresses, schedules, ...)."""
    from models import Address, ServicePoint

    column = {"organization": "organization_id", "location": "location_id", "service_at_location": "service_at_location_id"}.get(kind)
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


def delete_record(session: Session, client: ApiClient, kind: str, record_id: uuid.UUID, if_match,
                  serialize: Callable[[Any], dict]) -> None:
    """Delete an organization, program, taxonomy term, location or service at location (none of
    them has an HSDS status to mark inactive), with what hangs on it alone. Refused (Conflict,
    naming each kind of record and how many) while anything else still points at it."""
    model = _model_of(kind)
    what = kind.replace("_", " ")
    current = session.get(model, record_id)
    if current is None:
        raise NotFound(f"No {what} has this id.")
    if not _may_write(session, client, kind, getattr(current, "service_id", None), record_id):
        raise Forbidden(_refusal(kind, "delete"))
    before = serialize(current)
    check_version(before, if_match)
    found = {}
    for name, column in _references(kind):
        count = session.scalar(select(func.count()).select_from(column.table).where(column == record_id))
        if count:
            found[name] = count
    if found:
        listed = ", ".join(f"{count} {name}" for name, count in found.items())
        raise Conflict(f"The {what} is still referenced by {listed}; change or delete those first.", {"referenced_by": found})
    service_id = getattr(current, "service_id", None)
    for statement in _owned_rows(kind, record_id):
        session.execute(statement.execution_options(synchronize_session=False))
    session.expire_all()  # what was loaded of the rows just deleted is gone
    session.delete(session.get(model, record_id))
    session.add(RecordHistory(record_type=kind, record_id=record_id, action="delete", client_id=client.id,
                              client_name=client.name, at=utcnow(), changes=changes_between(before, None)))
    session.flush()
    if service_id is not None:  # a service at location: its service is offered in one place fewer
        session.expire_all()
        service = session.get(Service, service_id)
        if service is not None:
            service.last_modified = utcnow()
            session.flush()
            search.index_service(session, service_id)
