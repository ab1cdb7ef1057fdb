"""API clients, referrals and their events, idempotency keys, the audit log and webhooks.

A referral carries a child's and a family's personal data: only the fields a receiving program
needs to reach the family are stored, and none of them is ever logged or sent in a webhook.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, new_id, utcnow
from models.crypto import EncryptedDate, EncryptedText


class ApiClient(Base):
    __tablename__ = "api_client"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    key_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(255))  # space-separated
    email: Mapped[str | None] = mapped_column(String(254))  # whom to ask about the client's writes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    programs: Mapped[list[ApiClientProgram]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def scope_set(self) -> set[str]:
        return set(self.scopes.split())

    @property
    def program_ids(self) -> set[uuid.UUID]:
        return {link.program_id for link in self.programs}


class ApiClientProgram(Base):
    """A program whose referrals a client manages (scope referrals:manage)."""

    __tablename__ = "api_client_program"

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"), primary_key=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("program.id"), primary_key=True)


class Referral(Base):
    __tablename__ = "referral"
    __table_args__ = (
        Index("ix_referral_sender_updated", "sender_client_id", "updated_at"),
        Index("ix_referral_program_updated", "program_id", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service.id"), index=True)
    program_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("program.id"))
    sender_client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"))
    status: Mapped[str] = mapped_column(String(32), index=True)
    urgency: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(EncryptedText("referral.reason"))
    status_reason: Mapped[str | None] = mapped_column(EncryptedText("referral.status_reason"))
    outcome: Mapped[str | None] = mapped_column(EncryptedText("referral.outcome"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by `flask referrals erase`: every personal field below is then NULL.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Personal fields: encrypted at rest (models/crypto.py), NULL once erased. The enumerated
    # contact preference, consent method and the booleans identify no one and stay plain.
    child_given_name: Mapped[str | None] = mapped_column(EncryptedText("referral.child_given_name"))
    child_family_name: Mapped[str | None] = mapped_column(EncryptedText("referral.child_family_name"))
    child_birth_date: Mapped[date | None] = mapped_column(EncryptedDate("referral.child_birth_date"))
    child_town: Mapped[str | None] = mapped_column(EncryptedText("referral.child_town"))
    child_postcode: Mapped[str | None] = mapped_column(EncryptedText("referral.child_postcode"))

    guardian_name: Mapped[str | None] = mapped_column(EncryptedText("referral.guardian_name"))
    guardian_relationship: Mapped[str | None] = mapped_column(EncryptedText("referral.guardian_relationship"))
    guardian_phone: Mapped[str | None] = mapped_column(EncryptedText("referral.guardian_phone"))
    guardian_email: Mapped[str | None] = mapped_column(EncryptedText("referral.guardian_email"))
    guardian_preferred_language: Mapped[str | None] = mapped_column(
        EncryptedText("referral.guardian_preferred_language")
    )
    guardian_contact_preference: Mapped[str | None] = mapped_column(String(8))
    guardian_may_leave_message: Mapped[bool | None] = mapped_column(Boolean)

    consent_obtained: Mapped[bool | None] = mapped_column(Boolean)
    consent_obtained_by: Mapped[str | None] = mapped_column(EncryptedText("referral.consent_obtained_by"))
    consent_relationship: Mapped[str | None] = mapped_column(EncryptedText("referral.consent_relationship"))
    consent_obtained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_method: Mapped[str | None] = mapped_column(String(16))

    referrer_name: Mapped[str | None] = mapped_column(EncryptedText("referral.referrer_name"))
    referrer_organization: Mapped[str | None] = mapped_column(EncryptedText("referral.referrer_organization"))
    referrer_phone: Mapped[str | None] = mapped_column(EncryptedText("referral.referrer_phone"))
    referrer_email: Mapped[str | None] = mapped_column(EncryptedText("referral.referrer_email"))

    events: Mapped[list[ReferralEvent]] = relationship(order_by="ReferralEvent.sequence", back_populates="referral")


class ReferralEvent(Base):
    """One change of a referral: created, or a status moved, by whom, when and why."""

    __tablename__ = "referral_event"
    __table_args__ = (UniqueConstraint("referral_id", "sequence", name="uq_referral_event_sequence"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))  # referral.created, referral.status_changed, referral.erased
    # None for an operator's command (`flask referrals erase`, `purge`).
    actor_client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_client.id"))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(EncryptedText("referral_event.reason"))
    outcome: Mapped[str | None] = mapped_column(EncryptedText("referral_event.outcome"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="events")
    actor: Mapped[ApiClient | None] = relationship(lazy="joined")


class IdempotencyKey(Base):
    """A client's Idempotency-Key: the body it came with and the referral it made."""

    __tablename__ = "idempotency_key"

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """Who read or changed which referral, and when, through which channel and request (no
    personal data). A lookup refused as 404 is `denied`: its referral_id is NULL and the id
    asked for is in requested_id (it may name no referral, or one the client may not see)."""

    __tablename__ = "audit_log"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # None for an operator's command (channel `cli`).
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_client.id"), index=True)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referral.id"), index=True)
    requested_id: Mapped[uuid.UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[str | None] = mapped_column(String(8))  # rest, fhir, web, cli
    request_id: Mapped[str | None] = mapped_column(String(64))


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscription"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[str] = mapped_column(String(255))  # space-separated event types
    # Kept to sign payloads (HMAC needs the secret itself), encrypted; shown to the client once.
    secret: Mapped[str] = mapped_column(EncryptedText("webhook_subscription.secret"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Since when every attempt has failed (None after a success); a day of that disables it.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))


class WebhookDelivery(Base):
    """The outbox: one event to deliver to one subscription, written with the change itself."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_subscription.id"), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_event.id"))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, failed, cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(order_by="DeliveryAttempt.number")


class DeliveryAttempt(Base):
    __tablename__ = "webhook_delivery_attempt"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_delivery.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    # delivered, http_status, timeout, unreachable, address_refused (core.webhooks.OUTCOMES)
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(255))
    duration_ms: Mapped[int] = mapped_column(Integer)
