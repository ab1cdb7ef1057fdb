"""Erasing a family's data, the retention purge, and re-encryption under the current key.

Erasure keeps what the closed loop and the audit need (id, service, program, sender, status,
urgency, times, version, the events' statuses and times, the audit trail) and sets every
personal field to NULL: the child, guardian, consent and referrer, the reason, the status
reason and outcome, and the reasons and outcomes of its events. The Idempotency-Key of the
referral stays (a retry with it is a 409) but forgets the hash of the body it came with.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from core import referrals as lifecycle
from core import webhooks
from core.errors import InvalidData, NotFound
from models import IdempotencyKey, Referral, ReferralEvent, WebhookSubscription, utcnow
from models.crypto import EncryptedText

PERSONAL_FIELDS = (
    "reason",
    "status_reason",
    "outcome",
    "child_given_name",
    "child_family_name",
    "child_birth_date",
    "child_town",
    "child_postcode",
    "guardian_name",
    "guardian_relationship",
    "guardian_phone",
    "guardian_email",
    "guardian_preferred_language",
    "guardian_contact_preference",
    "guardian_may_leave_message",
    "consent_obtained",
    "consent_obtained_by",
    "consent_relationship",
    "consent_obtained_at",
    "consent_method",
    "referrer_name",
    "referrer_organization",
    "referrer_phone",
    "referrer_email",
)
ERASED_HASH = "erased"


def closed_statuses() -> tuple[str, ...]:
    """The statuses a referral never leaves (the lifecycle's ends)."""
    from models.vocab import REFERRAL_STATUSES

    return tuple(s for s in REFERRAL_STATUSES if s not in lifecycle.OPEN)


def erase_referral(session: Session, referral_id: uuid.UUID, now: datetime | None = None) -> Referral:
    """Redact a referral's personal data (an operator's act: no client), record a
    `referral.erased` event, audit it, and queue the webhook; the caller commits.
    Erasing an erased referral is refused."""
    referral = session.scalar(select(Referral).where(Referral.id == referral_id).with_for_update())
    if referral is None:
        raise NotFound("No referral has this id.")
    if referral.erased_at is not None:
        raise InvalidData("This referral is already erased.", {"referral_id": ["Already erased."]})
    now = now or utcnow()
    for name in PERSONAL_FIELDS:
        setattr(referral, name, None)
    for event in referral.events:
        event.reason = None
        event.outcome = None
    for key in session.scalars(select(IdempotencyKey).where(IdempotencyKey.referral_id == referral.id)):
        key.request_hash = ERASED_HASH
    referral.erased_at = now
    referral.updated_at = now
    referral.version += 1
    sequence = len(referral.events) + 1
    event = lifecycle._record(
        session, None, referral, "referral.erased", referral.status, referral.status, None, None, sequence
    )
    lifecycle._audit(session, None, [referral.id], "erase")
    webhooks.enqueue(session, referral, event, lifecycle.can_see)
    return referral


def purge(session: Session, retention_days: int, now: datetime | None = None) -> list[uuid.UUID]:
    """Erase every closed referral last changed more than `retention_days` days ago, and
    commit after each. Returns the ids erased."""
    if retention_days < 1:
        raise InvalidData("Set REFERRAL_RETENTION_DAYS to a number of days (1 or more).")
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    ids = list(
        session.scalars(
            select(Referral.id)
            .where(
                Referral.status.in_(closed_statuses()),
                Referral.erased_at.is_(None),
                Referral.updated_at < cutoff,
            )
            .order_by(Referral.updated_at, Referral.id)
        )
    )
    for referral_id in ids:
        erase_referral(session, referral_id, now)
        session.commit()
    return ids


def rotate_keys(session: Session, batch: int = 200) -> dict[str, int]:
    """Re-encrypt every encrypted value under the current key, committing per batch. Returns
    rows rewritten per table."""
    counts: dict[str, int] = {}
    models: tuple[type[Referral | ReferralEvent | WebhookSubscription], ...] = (
        Referral,
        ReferralEvent,
        WebhookSubscription,
    )
    for model in models:
        columns = [c.key for c in model.__table__.columns if isinstance(c.type, EncryptedText)]
        last = None
        counts[model.__tablename__] = 0
        while True:
            stmt = select(model).order_by(model.id).limit(batch)
            if last is not None:
                stmt = stmt.where(model.id > last)
            rows: list[Referral | ReferralEvent | WebhookSubscription] = list(session.scalars(stmt))
            if not rows:
                break
            for row in rows:
                for name in columns:
                    flag_modified(row, name)
            last = rows[-1].id
            session.commit()
            session.expunge_all()
            counts[model.__tablename__] += len(rows)
    return counts
