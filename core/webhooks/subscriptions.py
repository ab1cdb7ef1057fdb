"""A partner's webhook subscriptions (register, list, delete, rotate the secret, read the
delivery log) and the outbox: the delivery rows written with each referral event."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidData, NotFound
from core.paging import Page, paginate
from core.webhooks.addresses import check_url
from core.webhooks.policy import Policy, new_secret
from models import (
    ApiClient,
    ApiClientProgram,
    Referral,
    ReferralEvent,
    WebhookDelivery,
    WebhookSubscription,
    utcnow,
)
from models.vocab import WEBHOOK_EVENTS

# ----------------------------------------------------------------------------- subscriptions


def create_subscription(
    session: Session, client: ApiClient, url: str, events: list[str], policy: Policy | None = None
) -> WebhookSubscription:
    """Register a URL for these event types (at least one, each known): the URL vetted
    (`check_url`), at most `policy.max_per_client` live webhooks per key (Conflict), a new
    signing secret."""
    policy = policy or Policy()
    if not events:
        raise InvalidData("Name at least one event type.", {"events": ["Must not be empty."]})
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown:
        raise InvalidData("Unknown event type.", {"events": [f"Must be among: {', '.join(WEBHOOK_EVENTS)}."]})
    check_url(url, policy)
    count = session.execute(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(WebhookSubscription.client_id == client.id, WebhookSubscription.active)
    ).scalar_one()
    if count >= policy.max_per_client:
        raise Conflict(
            f"This key has {count} webhooks, the most a key may have ({policy.max_per_client}); delete one first.",
            {"url": ["Too many webhooks for this key."]},
        )
    subscription = WebhookSubscription(
        client_id=client.id, url=url, events=" ".join(sorted(set(events))), secret=new_secret()
    )
    session.add(subscription)
    session.flush()
    return subscription


def own_subscription(
    session: Session, client: ApiClient, subscription_id: uuid.UUID, live: bool = False
) -> WebhookSubscription:
    """The client's subscription (with `live`, only one that is not deleted), or NotFound."""
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None or subscription.client_id != client.id or (live and not subscription.active):
        raise NotFound("No webhook has this id.")
    return subscription


def list_subscriptions(session: Session, client: ApiClient, page: int, per_page: int) -> Page:
    """The client's live subscriptions, oldest first."""
    stmt = select(WebhookSubscription).where(WebhookSubscription.client_id == client.id, WebhookSubscription.active)
    return paginate(session, stmt.order_by(WebhookSubscription.created_at, WebhookSubscription.id), page, per_page)


def cancel_pending(session: Session, subscription_ids) -> int:
    """Mark the pending deliveries of these subscriptions cancelled; returns how many."""
    result = cast(
        CursorResult,
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.subscription_id.in_(list(subscription_ids)), WebhookDelivery.status == "pending")
            .values(status="cancelled")
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount or 0


def delete_subscription(session: Session, client: ApiClient, subscription_id: uuid.UUID) -> None:
    """Stop a subscription: no new deliveries, and its pending ones are cancelled."""
    subscription = own_subscription(session, client, subscription_id, live=True)
    subscription.active = False
    cancel_pending(session, [subscription.id])


def cancel_for_client(session: Session, client_id: uuid.UUID) -> int:
    """A revoked client's webhooks get nothing more: cancel their pending deliveries."""
    ids = list(session.scalars(select(WebhookSubscription.id).where(WebhookSubscription.client_id == client_id)))
    return cancel_pending(session, ids) if ids else 0


def rotate_secret(session: Session, client: ApiClient, subscription_id: uuid.UUID) -> WebhookSubscription:
    """A new signing secret; every later attempt, pending ones included, is signed with it."""
    subscription = own_subscription(session, client, subscription_id, live=True)
    subscription.secret = new_secret()
    return subscription


def deliveries(session: Session, client: ApiClient, subscription_id: uuid.UUID, page: int, per_page: int) -> Page:
    """The delivery log of one of the client's subscriptions (deleted ones included), oldest first."""
    own_subscription(session, client, subscription_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    return paginate(session, stmt.order_by(WebhookDelivery.created_at, WebhookDelivery.id), page, per_page)


# ----------------------------------------------------------------------------- the outbox


def payload(event: ReferralEvent, referral: Referral) -> dict:
    """What a delivery posts: ids, the event type, the referral's status and the time; no personal data."""
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
            WebhookSubscription.disabled_at.is_(None),
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
                subscription_id=subscription.id,
                event_id=event.id,
                payload=payload(event, referral),
                next_attempt_at=utcnow(),
            )
        )
        count += 1
    return count
