"""A service's availability: its SDOH capacity status, counts and expected wait, as set by
its program, and the status as served (`unknown` once it is stale)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_
from sqlalchemy.orm import Session

from core import search
from core.editing.access import check_version, editable_service
from core.editing.changes import changes_between, record_history
from core.editing.services import Serializer
from core.errors import InvalidData
from models import ApiClient, Service, utcnow
from models.vocab import CAPACITY_STATUSES

# Statuses under which a service takes new clients (`accepting_new=true`): now, or onto its waitlist.
ACCEPTING_NEW = ("capacity", "waitlist")
# Set from the app's configuration (CAPACITY_STALE_DAYS) by api.create_app.
settings = {"capacity_stale_days": 30}
# The fields of a capacity (as the API names them) and the service columns that hold them.
CAPACITY_FIELDS = {
    "status": "capacity_status",
    "available": "capacity_available",
    "maximum": "capacity_maximum",
    "unit": "capacity_unit",
    "expected_wait_days": "capacity_wait_days",
    "description": "capacity_description",
}


def set_capacity(
    session: Session, client: ApiClient, service_id: uuid.UUID, if_match, data: dict, serialize: Serializer
) -> Service:
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
    record_history(session, client, service_id, "capacity", changes_between({"capacity": before}, {"capacity": after}))
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
