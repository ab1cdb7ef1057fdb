"""Webhooks: an outbox written with each referral event, and a worker that delivers it.

Payloads carry ids only (event id, type, referral id, status, time), never personal data.
Each POST is signed: `X-OCCH-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
Delivery is at least once; receivers drop duplicates by `event_id`.

The worker runs inside the hospital's network, so a subscriber's URL must never make it reach
inside: the host is resolved when the URL is registered and again at every delivery, every
address it resolves to must be a public one (`refusal`), and the connection goes to the
address that was checked (no second look-up a rebinding DNS answer could change). Redirects are
not followed; each attempt has one total deadline; different subscriptions are served
concurrently from a bounded pool, so one slow receiver cannot stall the others.

The package, by part:

- `policy`: limits, back-off, the signature, new secrets, `Policy`.
- `addresses`: vetting a URL and the addresses its host resolves to.
- `subscriptions`: registering and managing subscriptions; the outbox (`enqueue`).
- `delivery`: one attempt (`send`).
- `worker`: claiming, attempting and recording due deliveries; the loop (`run`).
"""

from __future__ import annotations

from core.webhooks.addresses import (
    AddressRefused,
    Target,
    Unresolvable,
    check_url,
    parse_ipv4,
    parse_url,
    refusal,
    system_resolve,
    vetted_addresses,
)
from core.webhooks.delivery import Result, send
from core.webhooks.policy import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    DISABLED_REASON,
    MAX_ATTEMPTS,
    OUTCOME_TEXT,
    OUTCOMES,
    SIGNATURE_HEADER,
    Policy,
    backoff,
    new_secret,
    sign,
)
from core.webhooks.subscriptions import (
    cancel_for_client,
    cancel_pending,
    create_subscription,
    delete_subscription,
    deliveries,
    enqueue,
    list_subscriptions,
    own_subscription,
    payload,
    rotate_secret,
)
from core.webhooks.worker import deliver_due, record_unrecorded, run

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "DISABLED_REASON",
    "MAX_ATTEMPTS",
    "OUTCOMES",
    "OUTCOME_TEXT",
    "SIGNATURE_HEADER",
    "AddressRefused",
    "Policy",
    "Result",
    "Target",
    "Unresolvable",
    "backoff",
    "cancel_for_client",
    "cancel_pending",
    "check_url",
    "create_subscription",
    "delete_subscription",
    "deliver_due",
    "deliveries",
    "enqueue",
    "list_subscriptions",
    "new_secret",
    "own_subscription",
    "parse_ipv4",
    "parse_url",
    "payload",
    "record_unrecorded",
    "refusal",
    "rotate_secret",
    "run",
    "send",
    "sign",
    "system_resolve",
    "vetted_addresses",
]
