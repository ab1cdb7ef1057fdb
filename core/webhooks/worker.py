"""The worker: claim the due deliveries, attempt them from a bounded pool (different
subscriptions concurrently, each subscription's in order), record each attempt, retry with
back-off and disable a subscription that has failed for too long; `run` is the loop of
`flask webhooks run`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.webhooks.delivery import Result, send
from core.webhooks.policy import (
    DISABLED_REASON,
    MAX_ATTEMPTS,
    OUTCOME_TEXT,
    SIGNATURE_HEADER,
    Policy,
    backoff,
    log,
    sign,
)
from core.webhooks.subscriptions import cancel_pending
from models import ApiClient, DeliveryAttempt, WebhookDelivery, WebhookSubscription, utcnow


@dataclass
class _Job:
    """One due delivery as the pool attempts it, and its result once attempted."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    secret: str
    payload: dict
    due_at: datetime
    result: Result | None = None
    duration_ms: int = 0


def _headers(job: _Job, body: bytes) -> dict[str, str]:
    """The headers of a delivery: JSON, the signature over the body and the event id."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "occh-webhooks/1",
        SIGNATURE_HEADER: sign(job.secret, int(time.time()), body),
        "X-OCCH-Event-Id": job.payload["event_id"],
    }


def _deliver_group(jobs: list[_Job], policy: Policy, sender: Callable) -> list[_Job]:
    """One subscription's due deliveries, in order. After a timeout the rest wait for a later
    pass (each would cost another deadline)."""
    for job in jobs:
        body = json.dumps(job.payload, sort_keys=True).encode()
        started = time.monotonic()
        try:
            job.result = sender(job.url, body, _headers(job, body), policy)
        except Exception:  # noqa: BLE001 - a fault in one attempt must not end the pass
            log.exception("webhook attempt failed unexpectedly")
            job.result = Result("unreachable")
        job.duration_ms = int((time.monotonic() - started) * 1000)
        if job.result.outcome == "timeout":
            break
    return jobs


def _due_jobs(session: Session, now: datetime, limit: int) -> dict[uuid.UUID, list[_Job]]:
    """The pending deliveries due by `now` (oldest first, at most `limit`) of live subscriptions
    of unrevoked clients, by subscription; rows another worker holds are skipped."""
    stmt = (
        select(WebhookDelivery, WebhookSubscription)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(ApiClient, ApiClient.id == WebhookSubscription.client_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            WebhookSubscription.active,
            WebhookSubscription.disabled_at.is_(None),
            ApiClient.revoked_at.is_(None),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )
    due: dict[uuid.UUID, list[_Job]] = {}
    for delivery, subscription in session.execute(stmt).all():
        due.setdefault(subscription.id, []).append(
            _Job(
                delivery.id,
                subscription.id,
                subscription.url,
                subscription.secret,
                dict(delivery.payload),
                delivery.next_attempt_at,
            )
        )
    return due


def _claim(
    session: Session, due: dict[uuid.UUID, list[_Job]], now: datetime, policy: Policy
) -> dict[uuid.UUID, list[_Job]]:
    """Claim the due deliveries (committed) and return those this pass won, by subscription.

    Each is claimed until it has surely been attempted: a group starts once the pool has
    worked through the attempts submitted before it (at most ceil(earlier / pool size)
    deadlines), then its own go one after another. A worker that dies mid-pass leaves them
    due then."""
    groups: dict[uuid.UUID, list[_Job]] = {}
    earlier = 0
    for subscription_id, jobs in due.items():
        waves = -(-earlier // policy.pool_size)
        for position, job in enumerate(jobs):
            lease = now + timedelta(seconds=(waves + position + 1) * policy.timeout_s + 5)
            claimed = cast(
                CursorResult,
                session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == job.delivery_id,
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=lease)
                    .execution_options(synchronize_session=False)
                ),
            ).rowcount
            if claimed:
                groups.setdefault(subscription_id, []).append(job)
        earlier += len(jobs)
    session.commit()
    return {key: jobs for key, jobs in groups.items() if jobs}


def _attempt(
    session: Session,
    groups: dict[uuid.UUID, list[_Job]],
    now: datetime,
    policy: Policy,
    pool: ThreadPoolExecutor,
    sender: Callable,
    unrecorded: list | None,
) -> int:
    """Send each subscription's claimed deliveries from the pool and record each group's
    results as it completes; returns how many were attempted (see `deliver_due`)."""
    attempted = 0
    lost: OperationalError | None = None
    futures = [pool.submit(_deliver_group, jobs, policy, sender) for jobs in groups.values()]
    for future in as_completed(futures):
        jobs = future.result()
        attempted += len([job for job in jobs if job.result is not None])
        if unrecorded is None:
            _record(session, jobs, policy, now)
            session.commit()
            continue
        unrecorded.append((jobs, now))
        if lost is None:
            try:
                record_unrecorded(session, unrecorded, policy)
            except OperationalError as exc:
                lost = exc  # the other groups' results are still gathered, to be kept
    if lost is not None:
        raise lost
    return attempted


def deliver_due(
    session: Session,
    now: datetime | None = None,
    limit: int = 50,
    policy: Policy | None = None,
    pool: ThreadPoolExecutor | None = None,
    sender: Callable = send,
    backoff_base: float | None = None,
    unrecorded: list | None = None,
) -> int:
    """Attempt every delivery that is due; returns how many were attempted.

    Due deliveries are claimed first (their next attempt moved past the time they can take,
    committed), so another worker does not take them too; then each subscription's are sent
    from the pool, concurrently with the others', and each subscription's results are
    committed as they arrive. A failed delivery is retried `backoff(attempts)` seconds later;
    a subscription that has failed every attempt for `policy.disable_after` is disabled.

    With `unrecorded` (the worker's list), a result that cannot be committed because the
    database went away is kept there and committed by a later pass (`record_unrecorded`)."""
    policy = policy or Policy()
    if backoff_base is not None:
        policy = replace(policy, backoff_base=backoff_base)
    now = now or utcnow()
    groups = _claim(session, _due_jobs(session, now, limit), now, policy)
    if not groups:
        return 0
    own_pool = pool is None
    pool = pool or ThreadPoolExecutor(max_workers=policy.pool_size, thread_name_prefix="webhook")
    try:
        return _attempt(session, groups, now, policy, pool, sender, unrecorded)
    finally:
        if own_pool:
            pool.shutdown(wait=True)


def record_unrecorded(session: Session, unrecorded: list, policy: Policy) -> None:
    """Commit the results of attempts already made, oldest first. A result whose commit fails
    because the database is gone stays in `unrecorded` for the next pass: its delivery was
    attempted (perhaps delivered), so it is recorded as soon as the database is back, not left
    claimed until its lease ends and sent again."""
    while unrecorded:
        jobs, attempted_at = unrecorded[0]
        try:
            _record(session, jobs, policy, attempted_at)
            session.commit()
        except OperationalError:
            try:
                session.rollback()
            except OperationalError:
                pass
            raise
        unrecorded.pop(0)


def _record(session: Session, jobs: list[_Job], policy: Policy, now: datetime) -> int:
    """Record the results of one subscription's attempts (made at `now`): an attempt row each;
    a delivered delivery done, a failed one retried after `backoff` or failed after
    `MAX_ATTEMPTS`; the subscription disabled, its pending deliveries cancelled, once it has
    failed every attempt for `policy.disable_after`. Returns how many were attempted."""
    attempted = 0
    subscription = session.get_one(WebhookSubscription, jobs[0].subscription_id)
    for job in jobs:
        delivery = session.get_one(WebhookDelivery, job.delivery_id)
        if job.result is None:  # not attempted in this pass: due again as before
            if delivery.status == "pending":
                delivery.next_attempt_at = job.due_at
            continue
        attempted += 1
        result = job.result
        delivery.attempts += 1
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                number=delivery.attempts,
                status_code=result.status_code,
                outcome=result.outcome,
                error=OUTCOME_TEXT[result.outcome],
                duration_ms=job.duration_ms,
            )
        )
        if result.ok:
            subscription.failing_since = None
            if delivery.status == "pending":
                delivery.status = "delivered"
                delivery.delivered_at = utcnow()
            continue
        if subscription.failing_since is None:
            subscription.failing_since = now
        if delivery.status != "pending":
            continue
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts, policy.backoff_base))
    last = next((job.result for job in reversed(jobs) if job.result is not None), None)
    if (
        last is not None
        and not last.ok
        and subscription.disabled_at is None
        and subscription.failing_since is not None
        and now - subscription.failing_since >= policy.disable_after
    ):
        subscription.disabled_at = now
        subscription.disabled_reason = DISABLED_REASON.format(
            hours=policy.disable_after.total_seconds() / 3600, outcome=last.outcome
        )
        session.flush()
        cancel_pending(session, [subscription.id])
        log.warning("webhook %s disabled: every attempt failed for a day", subscription.id)
    return attempted


def run(
    session_factory: Callable[[], Session],
    once: bool = False,
    idle_sleep: float = 1.0,
    backoff_base: float | None = None,
    policy: Policy | None = None,
) -> int:
    """The delivery loop of `flask webhooks run`; with `once`, one pass.

    Deliveries to different subscriptions run concurrently on a pool of `policy.pool_size`
    threads. The loop outlives a lost database: a pass that cannot reach it is logged and tried
    again after `idle_sleep`; nothing is marked attempted unless its attempt was committed.
    """
    policy = policy or Policy()
    if backoff_base is not None:
        policy = replace(policy, backoff_base=backoff_base)
    total = 0
    unrecorded: list = []
    with ThreadPoolExecutor(max_workers=policy.pool_size, thread_name_prefix="webhook") as pool:
        while True:
            session = session_factory()
            try:
                record_unrecorded(session, unrecorded, policy)
                attempted = deliver_due(session, policy=policy, pool=pool, unrecorded=unrecorded)
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
