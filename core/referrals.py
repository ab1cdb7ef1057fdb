"""Closed-loop referrals: submit, follow, move through the FHIR Task lifecycle.

Visibility: a referral is seen by the client that sent it and by the clients that manage the
receiving program; to anyone else it does not exist. Every read is written to the audit log.
The referral, its first event and its outbox rows are written in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from sqlalchemy import CursorResult, false, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core import context, editing, webhooks
from core.errors import Conflict, Forbidden, InvalidData, InvalidTransition, NotFound, PreconditionFailed
from core.paging import Page, paginate
from models import ApiClient, AuditEntry, IdempotencyKey, Referral, ReferralEvent, Service, utcnow

# The lifecycle (HL7 FHIR Task.status). entered-in-error is the sender's, from any open state.
NEXT = {
    "requested": ("accepted", "rejected", "cancelled"),
    "accepted": ("in-progress", "on-hold", "completed", "failed", "cancelled"),
    "in-progress": ("on-hold", "completed", "failed", "cancelled"),
    "on-hold": ("in-progress", "completed", "failed", "cancelled"),
}
OPEN = tuple(NEXT)
SENDER_MOVES = {"cancelled", "entered-in-error"}
RECEIVER_MOVES = {"accepted", "rejected", "in-progress", "on-hold", "completed", "failed"}
REASON_REQUIRED = {"rejected", "on-hold", "failed", "cancelled", "entered-in-error"}


def next_statuses(status: str) -> list[str]:
    return list(NEXT.get(status, ())) + (["entered-in-error"] if status in OPEN else [])


# ----------------------------------------------------------------------------- who sees what


def is_sender(client: ApiClient, referral: Referral) -> bool:
    return referral.sender_client_id == client.id and "referrals:submit" in client.scope_set


def is_receiver(client: ApiClient, referral: Referral) -> bool:
    return "referrals:manage" in client.scope_set and referral.program_id in client.program_ids


def visible_to(client: ApiClient):
    """A WHERE clause: the referrals this client may see."""
    conditions = []
    if "referrals:submit" in client.scope_set:
        conditions.append(Referral.sender_client_id == client.id)
    if "referrals:manage" in client.scope_set and client.program_ids:
        conditions.append(Referral.program_id.in_(client.program_ids))
    return or_(*conditions) if conditions else false()


def moves_for(client: ApiClient, referral: Referral) -> list[str]:
    """The next statuses the lifecycle allows this client to give this referral."""
    return [
        s
        for s in next_statuses(referral.status)
        if (s in SENDER_MOVES and is_sender(client, referral))
        or (s in RECEIVER_MOVES and is_receiver(client, referral))
    ]


def can_see(client: ApiClient, referral: Referral) -> bool:
    return is_sender(client, referral) or is_receiver(client, referral)


def _visible(session: Session, client: ApiClient, referral_id: uuid.UUID, lock: bool = False) -> Referral:
    stmt = select(Referral).where(Referral.id == referral_id, visible_to(client))
    if lock:  # and read it afresh, whatever this session saw of it before
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    referral = session.scalar(stmt)
    if referral is None:
        # Audited as denied, and committed: the request fails but its trace stays.
        session.add(_entry(client, None, "denied", requested_id=referral_id))
        session.commit()
        raise NotFound("No referral has this id.")
    return referral


def _entry(client: ApiClient | None, referral_id, action: str, requested_id=None) -> AuditEntry:
    return AuditEntry(
        client_id=client.id if client is not None else None,
        referral_id=referral_id,
        requested_id=requested_id,
        action=action,
        channel=context.channel(),
        request_id=context.request_id(),
    )


def _audit(session: Session, client: ApiClient | None, referral_ids, action: str) -> None:
    """Audit rows, with the channel and request id of core.context; `client` None is the operator."""
    session.add_all(_entry(client, rid, action) for rid in referral_ids)


# ----------------------------------------------------------------------------- submitting


def _request_hash(data: dict) -> str:
    def default(value):
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        return str(value)

    return hashlib.sha256(json.dumps(data, sort_keys=True, default=default).encode()).hexdigest()


def _age_on(birth: date, day: date) -> float:
    years = day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
    return float(years)


# Set from the app's config (REFERRAL_MAX_AGE_YEARS): no child referred is older than this.
settings = {"max_age_years": 26}


def _check_service(session: Session, data: dict) -> Service:
    age = _age_on(data["child"]["birth_date"], utcnow().date())
    if age > settings["max_age_years"]:
        raise InvalidData(
            f"The child is older than {settings['max_age_years']} years (REFERRAL_MAX_AGE_YEARS): "
            "check the birth date.",
            {"child": {"birth_date": [f"The child would be older than {settings['max_age_years']} years."]}},
        )
    service = session.get(Service, data["service_id"])
    if service is None:
        raise InvalidData("The service referred to does not exist.", {"service_id": ["Unknown service."]})
    if service.status != "active":
        raise InvalidData("The service is not active.", {"service_id": ["The service is not active."]})
    if not service.accepts_referrals:
        raise InvalidData(
            "The service does not accept referrals; see its referral contact points.",
            {"service_id": ["The service does not accept referrals."]},
        )
    if service.program_id is None:
        # No program would ever see (or answer) a referral to it.
        raise InvalidData(
            "The service has no receiving program, so no one could answer a referral; see its referral contact points.",
            {"service_id": ["The service has no program to receive referrals."]},
        )
    if editing.capacity_status(service, editing.settings["capacity_stale_days"]) == "no-capacity":
        raise InvalidData(
            "The service has no capacity for new referrals now; see its referral contact points or try later.",
            {"service_id": ["The service has no capacity (no-capacity)."]},
        )
    if service.minimum_age is not None and age < service.minimum_age:
        raise InvalidData(
            f"The child is younger than the service's minimum age ({service.minimum_age:g}).",
            {"child": {"birth_date": ["The child is below the service's age range."]}},
        )
    if service.maximum_age is not None and age > service.maximum_age:
        raise InvalidData(
            f"The child is older than the service's maximum age ({service.maximum_age:g}).",
            {"child": {"birth_date": ["The child is above the service's age range."]}},
        )
    return service


@dataclass
class Submitted:
    referral: Referral
    created: bool


def submit_referral(session: Session, client: ApiClient, data: dict, idempotency_key: str) -> Submitted:
    """Create a referral once per Idempotency-Key, and commit.

    A retry with the same key and body returns the first referral; the same key with another
    body is a Conflict. Concurrent requests with one key race on the key's primary key: the
    loser's transaction is rolled back and it returns the winner's referral.
    """
    request_hash = _request_hash(data)
    for attempt in (1, 2):
        existing = session.get(IdempotencyKey, (client.id, idempotency_key))
        if existing is not None:
            if existing.request_hash != request_hash:
                raise Conflict("This Idempotency-Key was used with a different request.")
            _audit(session, client, [existing.referral_id], "replay")
            session.commit()
            return Submitted(session.get_one(Referral, existing.referral_id), created=False)
        try:
            referral = _create(session, client, data)
            session.add(
                IdempotencyKey(
                    client_id=client.id, key=idempotency_key, request_hash=request_hash, referral_id=referral.id
                )
            )
            session.commit()
            return Submitted(referral, created=True)
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _create(session: Session, client: ApiClient, data: dict) -> Referral:
    service = _check_service(session, data)
    now = utcnow()
    # The nested groups of the request map onto prefixed columns: child.town -> child_town.
    people = {
        f"{group}_{field}": value
        for group in ("child", "guardian", "consent", "referrer")
        for field, value in data[group].items()
    }
    referral = Referral(
        id=uuid.uuid4(),
        service_id=service.id,
        program_id=service.program_id,
        sender_client_id=client.id,
        status="requested",
        urgency=data["urgency"],
        reason=data["reason"],
        version=1,
        created_at=now,
        updated_at=now,
        **people,
    )
    session.add(referral)
    session.flush()
    event = _record(session, client, referral, "referral.created", None, "requested", None, None, 1)
    _audit(session, client, [referral.id], "create")
    webhooks.enqueue(session, referral, event, can_see)
    return referral


def _record(session, client, referral, kind, from_status, to_status, reason, outcome, sequence) -> ReferralEvent:
    event = ReferralEvent(
        referral_id=referral.id,
        sequence=sequence,
        type=kind,
        actor_client_id=client.id if client is not None else None,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        outcome=outcome,
        occurred_at=referral.updated_at,
    )
    session.add(event)
    session.flush()
    return event


# ----------------------------------------------------------------------------- following


def get_referral(session: Session, client: ApiClient, referral_id: uuid.UUID) -> Referral:
    referral = _visible(session, client, referral_id)
    _audit(session, client, [referral.id], "read")
    return referral


def list_referrals(
    session: Session,
    client: ApiClient,
    statuses: list[str],
    service_ids: list[uuid.UUID],
    updated_since: datetime | None,
    page: int,
    per_page: int,
    owners: list[uuid.UUID] | None = None,
) -> Page:
    """`owners`: only referrals received by these programs (a referral's own program_id, fixed
    when it was made; for a referral without one, its service's organization)."""
    stmt = select(Referral).where(visible_to(client))
    if owners:
        stmt = stmt.where(
            or_(
                Referral.program_id.in_(owners),
                Referral.program_id.is_(None)
                & Referral.service_id.in_(select(Service.id).where(Service.organization_id.in_(owners))),
            )
        )
    if statuses:
        stmt = stmt.where(Referral.status.in_(statuses))
    if service_ids:
        stmt = stmt.where(Referral.service_id.in_(service_ids))
    if updated_since is not None:
        stmt = stmt.where(Referral.updated_at > updated_since)
    result = paginate(session, stmt.order_by(Referral.updated_at, Referral.id), page, per_page)
    _audit(session, client, [r.id for r in result.contents], "list")
    return result


def referral_events(session: Session, client: ApiClient, referral_id: uuid.UUID) -> list[ReferralEvent]:
    referral = _visible(session, client, referral_id)
    _audit(session, client, [referral.id], "read_events")
    return list(referral.events)


# ----------------------------------------------------------------------------- moving


def begin_change(session: Session) -> None:
    """Start the transaction of a change that reads before it writes, holding the write lock.

    On SQLite the database's write lock is taken now (`BEGIN IMMEDIATE`): a concurrent change
    waits (busy_timeout) and then reads what this one committed. The pysqlite driver only begins
    a transaction before its first INSERT/UPDATE/DELETE, so the reads so far (the API key's
    lookup) ran outside one; if this transaction has written already it is committed first.
    On PostgreSQL the referral's row lock (SELECT ... FOR UPDATE) does the same, row by row.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None  # the connection was just checked out: it is open
    if driver_connection.in_transaction:
        session.commit()
        connection = session.connection()
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def referral_for_change(
    session: Session, client: ApiClient, referral_id: uuid.UUID, expected_version: int | None
) -> Referral:
    """Begin a change (begin_change) and read the referral under its lock; PreconditionFailed
    when `expected_version` (from If-Match) is not its version."""
    begin_change(session)
    referral = _visible(session, client, referral_id, lock=True)
    if expected_version is not None and expected_version != referral.version:
        raise PreconditionFailed("The referral changed since you read it; read it again and retry.")
    return referral


def transition_referral(
    session: Session,
    client: ApiClient,
    referral_id: uuid.UUID,
    to_status: str,
    reason: str | None,
    outcome: str | None,
    expected_version: int | None,
) -> Referral:
    """Move a referral to `to_status`; the caller commits."""
    referral = referral_for_change(session, client, referral_id, expected_version)
    return move_referral(session, client, referral, to_status, reason, outcome, expected_version)


def move_referral(
    session: Session,
    client: ApiClient,
    referral: Referral,
    to_status: str,
    reason: str | None,
    outcome: str | None,
    expected_version: int | None = None,
) -> Referral:
    """Move a referral read by referral_for_change to `to_status`; the caller commits.

    The write itself checks that nobody moved the referral since it was read
    (`UPDATE ... WHERE id = ? AND version = ?`): if its row count is not 1 the move is refused
    (PreconditionFailed with If-Match, Conflict without) and nothing is recorded.
    """
    if referral.erased_at is not None:
        raise InvalidTransition("This referral was erased; it can no longer change.", allowed=[])
    possible = next_statuses(referral.status)
    mine = moves_for(client, referral)
    if to_status not in possible:
        raise InvalidTransition(f"A referral that is {referral.status} cannot become {to_status}.", allowed=mine)
    if to_status not in mine:
        who = "the sender" if to_status in SENDER_MOVES else "the receiving program"
        raise Forbidden(f"Only {who} may make a referral {to_status}.", {"allowed": mine})
    if to_status in REASON_REQUIRED and not reason:
        raise InvalidData(f"A reason is required to make a referral {to_status}.", {"reason": ["Required."]})
    if outcome and to_status != "completed":
        raise InvalidData("An outcome is recorded only on completion.", {"outcome": ["Only with completed."]})
    from_status, read_version = referral.status, referral.version
    changes = {"status": to_status, "status_reason": reason, "version": read_version + 1, "updated_at": utcnow()}
    if to_status == "completed":
        changes["outcome"] = outcome
    # An UPDATE's result is a CursorResult, which counts the rows (Session.execute is typed Result).
    written = cast(
        CursorResult,
        session.execute(
            update(Referral)
            .where(Referral.id == referral.id, Referral.version == read_version, Referral.status == from_status)
            .values(**changes)
            .execution_options(synchronize_session=False)
        ),
    )
    if written.rowcount != 1:
        if expected_version is not None:
            raise PreconditionFailed("The referral changed since you read it; read it again and retry.")
        raise Conflict("The referral changed while this move was made; read it again and retry.")
    for name, value in changes.items():  # the written values, without a second UPDATE
        set_committed_value(referral, name, value)
    sequence = len(referral.events) + 1
    event = _record(
        session, client, referral, "referral.status_changed", from_status, to_status, reason, outcome, sequence
    )
    _audit(session, client, [referral.id], "transition")
    webhooks.enqueue(session, referral, event, can_see)
    return referral
