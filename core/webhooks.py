"""Webhooks: an outbox written with each referral event, and a worker that delivers it.

Payloads carry ids only (event id, type, referral id, status, time), never personal data.
Each POST is signed: `X-OCCH-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
Delivery is at least once; receivers drop duplicates by `event_id`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.errors import InvalidData, NotFound
from core.paging import Page, paginate
from models import (
    ApiClient,
    ApiClientProgram,
    DeliveryAttempt,
    Referral,
    ReferralEvent,
    WebhookDelivery,
    WebhookSubscription,
    utcnow,
)
from models.vocab import WEBHOOK_EVENTS

MAX_ATTEMPTS = 12
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 3600.0
TIMEOUT_S = 5.0
SIGNATURE_HEADER = "X-OCCH-Signature"

log = logging.getLogger("occh.webhooks")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff(attempts: int, base: float = BACKOFF_BASE_S) -> float:
    """Seconds to wait after the `attempts`-th failure: base, 2 base, 4 base, ... (2, 4, 8 s
    by default), capped at an hour."""
    return min(BACKOFF_CAP_S, base * 2 ** (attempts - 1))


# ----------------------------------------------------------------------------- subscriptions


def create_subscription(session: Session, client: ApiClient, url: str, events: list[str]) -> WebhookSubscription:
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown:
        raise InvalidData("Unknown event type.", {"events": [f"Must be among: {', '.join(WEBHOOK_EVENTS)}."]})
    subscription = WebhookSubscription(
        client_id=client.id,
        url=url,
        events=" ".join(sorted(set(events or WEBHOOK_EVENTS))),
        secret="whsec_" + secrets.token_urlsafe(32),
    )
    session.add(subscription)
    session.flush()
    return subscription


def own_subscription(session: Session, client: ApiClient, subscription_id: uuid.UUID) -> WebhookSubscription:
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None or subscription.client_id != client.id:
        raise NotFound("No webhook has this id.")
    return subscription


def list_subscriptions(session: Session, client: ApiClient, page: int, per_page: int) -> Page:
    stmt = select(WebhookSubscription).where(WebhookSubscription.client_id == client.id, WebhookSubscription.active)
    return paginate(session, stmt.order_by(WebhookSubscription.created_at, WebhookSubscription.id), page, per_page)


def deliveries(session: Session, client: ApiClient, subscription_id: uuid.UUID, page: int, per_page: int) -> Page:
    own_subscription(session, client, subscription_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    return paginate(session, stmt.order_by(WebhookDelivery.created_at, WebhookDelivery.id), page, per_page)


# ----------------------------------------------------------------------------- the outbox


def payload(event: ReferralEvent, referral: Referral) -> dict:
    return {
        "event_id": str(event.id),
        "event_type": event.type,
        "referral_id": str(referral.id),
        "status": referral.status,
        "occurred_at": event.occurred_at.isoformat(),
    }


def enqueue(
    session: Session, referral: Referral, event: ReferralEvent, can_see: Callable[[ApiClient, Referral], bool]
) -> int:
    """Outbox rows for every subscription whose owner `can_see` the referral and that wants
    this event."""
    # Only the sender's and the receiving program's clients can see it: ask for theirs alone.
    managers = select(ApiClientProgram.client_id).where(ApiClientProgram.program_id == referral.program_id)
    rows = session.execute(
        select(WebhookSubscription, ApiClient)
        .join(ApiClient, ApiClient.id == WebhookSubscription.client_id)
        .where(
            WebhookSubscription.active,
            ApiClient.revoked_at.is_(None),
            or_(ApiClient.id == referral.sender_client_id, ApiClient.id.in_(managers)),
        )
    ).all()
    count = 0
    for subscription, owner in rows:
        if event.type not in subscription.events.split() or not can_see(owner, referral):
            continue
        session.add(
            WebhookDelivery(
                subscription_id=subscription.id, event_id=event.id, payload=payload(event, referral), next_attempt_at=utcnow()
            )
        )
        count += 1
    return count


# ----------------------------------------------------------------------------- delivery


@dataclass
class Response:
    status_code: int | None
    error: str | None


def http_post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as reply:  # noqa: S310 (URL set by the subscriber)
            return Response(reply.status, None)
    except urllib.error.HTTPError as exc:
        return Response(exc.code, None)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Response(None, type(reason).__name__ if not isinstance(reason, str) else reason[:200])


def deliver_due(
    session: Session,
    now: datetime | None = None,
    limit: int = 50,
    post: Callable = http_post,
    backoff_base: float = BACKOFF_BASE_S,
) -> int:
    """Attempt every delivery that is due; commit after each. Returns how many were attempted.
    A failed delivery is retried `backoff(attempts, backoff_base)` seconds later."""
    now = now or utcnow()
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    due = list(session.scalars(stmt))
    for delivery in due:
        _attempt(session, delivery, post, backoff_base)
        session.commit()
    return len(due)


def _attempt(session: Session, delivery: WebhookDelivery, post: Callable, backoff_base: float) -> None:
    subscription = session.get(WebhookSubscription, delivery.subscription_id)
    body = json.dumps(delivery.payload, sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "occh-webhooks/1",
        SIGNATURE_HEADER: sign(subscription.secret, timestamp, body),
        "X-OCCH-Event-Id": delivery.payload["event_id"],
    }
    started = time.monotonic()
    response = post(subscription.url, body, headers)
    delivery.attempts += 1
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            number=delivery.attempts,
            status_code=response.status_code,
            error=response.error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
    )
    now = utcnow()
    if response.status_code is not None and 200 <= response.status_code < 300:
        delivery.status = "delivered"
        delivery.delivered_at = now
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts, backoff_base))


def run(
    session_factory: Callable[[], Session],
    once: bool = False,
    idle_sleep: float = 1.0,
    backoff_base: float = BACKOFF_BASE_S,
) -> int:
    """The delivery loop of `flask webhooks run`; with `once`, one pass.

    The loop outlives a lost database: a pass that cannot reach it is logged and tried again
    after `idle_sleep`; nothing is marked attempted unless its attempt was committed.
    """
    total = 0
    while True:
        session = session_factory()
        try:
            attempted = deliver_due(session, backoff_base=backoff_base)
        except OperationalError as exc:
            if once:
                raise
            log.error("webhook delivery pass failed: database unavailable (%s)", type(exc.orig).__name__)
            attempted = 0
        finally:
            session.close()
        total += attempted
        if once:
            return total
        if not attempted:
            time.sleep(idle_sleep)
