"""The delivery policy and what every part of the webhooks shares: attempt limits and
back-off, the signature, new secrets, and `Policy` (where and how the worker may deliver)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

MAX_ATTEMPTS = 12
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 3600.0
SIGNATURE_HEADER = "X-OCCH-Signature"

# What a partner reads in the delivery log: the outcome and a fixed sentence, never an
# exception class or a socket detail (those would make the worker a port scanner's oracle).
OUTCOMES = ("delivered", "http_status", "timeout", "unreachable", "address_refused")
OUTCOME_TEXT = {
    "delivered": None,
    "http_status": None,
    "timeout": "No complete answer within the deadline.",
    "unreachable": "The receiver could not be reached.",
    "address_refused": "The URL is not allowed (https to a public address); nothing was sent.",
}
DISABLED_REASON = (
    "Every delivery attempt failed for {hours:g} hours (last outcome: {outcome}); "
    "pending deliveries were cancelled. Delete this webhook and register it again to resume."
)

log = logging.getLogger("occh.webhooks")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-OCCH-Signature header value: `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff(attempts: int, base: float = BACKOFF_BASE_S) -> float:
    """Seconds to wait after the `attempts`-th failure: base, 2 base, 4 base, ... (2, 4, 8 s
    by default), capped at an hour."""
    return min(BACKOFF_CAP_S, base * 2 ** (attempts - 1))


def new_secret() -> str:
    """A new signing secret (`whsec_` and 32 random bytes)."""
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Policy:
    """Where and how the worker may deliver. The defaults are the safe ones: https only, public
    addresses only."""

    allow_private: bool = False
    allow_http: bool = False
    timeout_s: float = 10.0
    max_per_client: int = 5
    pool_size: int = 8
    backoff_base: float = BACKOFF_BASE_S
    disable_after: timedelta = timedelta(days=1)
    # Replaceable for tests of DNS answers that change (None: `system_resolve`, the system's).
    resolve: Callable[[str, int], list[str]] | None = field(default=None, compare=False)
    # Replaceable for tests that trust a test certificate authority.
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)

    @classmethod
    def from_config(cls, config: Mapping, **changes) -> Policy:
        values: dict[str, Any] = dict(
            allow_private=bool(config.get("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)),
            allow_http=bool(config.get("WEBHOOK_ALLOW_HTTP", False)),
            timeout_s=float(config.get("WEBHOOK_TIMEOUT_S", 10.0)),
            max_per_client=int(config.get("WEBHOOK_MAX_PER_CLIENT", 5)),
            pool_size=max(1, int(config.get("WEBHOOK_POOL_SIZE", 8))),
            backoff_base=float(config.get("WEBHOOK_BACKOFF_BASE_S", BACKOFF_BASE_S)),
        )
        values.update(changes)
        return cls(**values)
