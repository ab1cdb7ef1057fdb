"""Webhooks: an outbox written with each referral event, and a worker that delivers it.

Payloads carry ids only (event id, type, referral id, status, time), never personal data.
Each POST is signed: `X-OCCH-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
Delivery is at least once; receivers drop duplicates by `event_id`.

The worker runs inside the hospital's network, so a subscriber's URL must never make it reach
inside: the host is resolved when the URL is registered and again at every delivery, every
address it resolves to must be a public one (`check_address`), and the connection goes to the
address that was checked (no second look-up a rebinding DNS answer could change). Redirects are
not followed; each attempt has one total deadline; different subscriptions are served
concurrently from a bounded pool, so one slow receiver cannot stall the others.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import re
import secrets
import socket
import ssl
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Mapping
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidData, NotFound
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
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff(attempts: int, base: float = BACKOFF_BASE_S) -> float:
    """Seconds to wait after the `attempts`-th failure: base, 2 base, 4 base, ... (2, 4, 8 s
    by default), capped at an hour."""
    return min(BACKOFF_CAP_S, base * 2 ** (attempts - 1))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# ----------------------------------------------------------------------------- policy


def system_resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the operating system's resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [info[4][0] for info in infos]


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
    def from_config(cls, config: Mapping, **changes) -> "Policy":
        values = dict(
            allow_private=bool(config.get("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)),
            allow_http=bool(config.get("WEBHOOK_ALLOW_HTTP", False)),
            timeout_s=float(config.get("WEBHOOK_TIMEOUT_S", 10.0)),
            max_per_client=int(config.get("WEBHOOK_MAX_PER_CLIENT", 5)),
            pool_size=max(1, int(config.get("WEBHOOK_POOL_SIZE", 8))),
            backoff_base=float(config.get("WEBHOOK_BACKOFF_BASE_S", BACKOFF_BASE_S)),
        )
        values.update(changes)
        return cls(**values)


class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address the policy refuses."""


class Unresolvable(Exception):
    """The URL's host does not resolve."""


_NUMBER = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # CGNAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")


def _ipv4_number(part: str) -> int:
    text = part.lower()
    if text.startswith("0x"):
        return int(text[2:] or "0", 16)
    if len(text) > 1 and text.startswith("0"):
        return int(text[1:], 8)  # ValueError for 08, 09
    return int(text, 10)


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address of a host written in any notation the C library (and browsers) accept:
    dotted decimal, one 32-bit number (`2130706433`), hex (`0x7f000001`, `0x7f.0.0.1`), octal
    (`0177.0.0.1`) and short forms (`127.1`). None for a host name; ValueError for a host that
    ends in a number but is no valid address (`999.1.1.1`, `1.2.3.4.5`)."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]
    if not parts or not _NUMBER.match(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUMBER.match(p) for p in parts):
        raise ValueError("not an IPv4 address")
    numbers = [_ipv4_number(p) for p in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError("not an IPv4 address")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool = False) -> str | None:
    """Why the worker may not connect to `address` (a class name such as "loopback"), or None.

    IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible,
    6to4, NAT64) are judged by the IPv4 address they carry; Teredo is refused."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "link-local"
        embedded = None
        if address.ipv4_mapped is not None:
            embedded = address.ipv4_mapped
        elif address.sixtofour is not None:
            embedded = address.sixtofour
        elif address in _NAT64 or address in _NAT64_LOCAL or (address in _IPV4_COMPATIBLE and int(address) > 1):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.teredo is not None:
            return "reserved"
        if embedded is not None:
            return refusal(embedded, allow_private)
    # Never meaningful for a webhook, whatever the setting.
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved and not address.is_loopback:  # ::1 lies in IPv6's reserved ::/8
        return "reserved"
    if allow_private:
        return None
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address in _SHARED:
        return "shared (CGNAT)"
    if isinstance(address, ipaddress.IPv6Address) and (address in ipaddress.ip_network("fc00::/7") or address in _SITE_LOCAL):
        return "unique-local"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (lower case, IDNA), for the Host header and TLS
    port: int
    path: str  # path and query
    literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None  # the host when it is an address


def parse_url(url: str, policy: Policy) -> Target:
    """The parts of a subscriber's URL, or InvalidData saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidData("The webhook URL is not valid.", {"url": ["Not a valid URL."]}) from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if scheme not in allowed:
        raise InvalidData("The webhook URL must use https.", {"url": ["Must be an https URL."]})
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidData("The webhook URL must not hold credentials.", {"url": ["Must not contain a user name or password."]})
    host = parts.hostname or ""
    if host.endswith(".") and ":" not in host:
        host = host[:-1]
    if not host or "%" in host:
        raise InvalidData("The webhook URL has no valid host.", {"url": ["Not a valid host."]})
    literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if ":" in host:
        try:
            literal = ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidData("The webhook URL has no valid host.", {"url": ["Not a valid host."]}) from None
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
            literal = parse_ipv4(host)
        except (UnicodeError, ValueError):
            raise InvalidData("The webhook URL has no valid host.", {"url": ["Not a valid host."]}) from None
        if literal is None and not _HOST_NAME.match(host):
            raise InvalidData("The webhook URL has no valid host.", {"url": ["Not a valid host."]})
    if port == 0:
        raise InvalidData("The webhook URL has no valid port.", {"url": ["Not a valid port."]})
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path, literal)


def vetted_addresses(target: Target, policy: Policy) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses to connect to: the host itself when it is an address, else every address
    it resolves to now. AddressRefused when any of them is refused (a name with one private
    answer among public ones is refused whole); Unresolvable when it resolves to nothing."""
    if target.literal is not None:
        addresses = [target.literal]
    else:
        try:
            answers = (policy.resolve or system_resolve)(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise Unresolvable() from exc
        addresses = []
        for answer in answers:
            try:
                address = ipaddress.ip_address(answer.split("%", 1)[0])
            except ValueError:
                raise AddressRefused("reserved") from None
            if "%" in answer:
                raise AddressRefused("link-local")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise Unresolvable()
    for address in addresses:
        reason = refusal(address, policy.allow_private)
        if reason is not None:
            raise AddressRefused(reason)
    return addresses


def check_url(url: str, policy: Policy) -> Target:
    """Registration: the URL is well-formed, and its host is (or resolves to) allowed addresses."""
    target = parse_url(url, policy)
    try:
        vetted_addresses(target, policy)
    except AddressRefused as exc:
        raise InvalidData(
            f"The webhook URL's host is or resolves to an address that is not allowed ({exc.args[0]}); "
            "webhooks go to public addresses only.",
            {"url": ["Not a public address."]},
        ) from None
    except Unresolvable:
        raise InvalidData("The webhook URL's host name does not resolve.", {"url": ["Host name not found."]}) from None
    return target


# ----------------------------------------------------------------------------- subscriptions


def create_subscription(
    session: Session, client: ApiClient, url: str, events: list[str], policy: Policy | None = None
) -> WebhookSubscription:
    policy = policy or Policy()
    if not events:
        raise InvalidData("Name at least one event type.", {"events": ["Must not be empty."]})
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown:
        raise InvalidData("Unknown event type.", {"events": [f"Must be among: {', '.join(WEBHOOK_EVENTS)}."]})
    check_url(url, policy)
    count = session.scalar(
        select(func.count()).select_from(WebhookSubscription).where(
            WebhookSubscription.client_id == client.id, WebhookSubscription.active
        )
    )
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
    stmt = select(WebhookSubscription).where(WebhookSubscription.client_id == client.id, WebhookSubscription.active)
    return paginate(session, stmt.order_by(WebhookSubscription.created_at, WebhookSubscription.id), page, per_page)


def cancel_pending(session: Session, subscription_ids) -> int:
    """Mark the pending deliveries of these subscriptions cancelled; returns how many."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id.in_(list(subscription_ids)), WebhookDelivery.status == "pending")
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
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
                subscription_id=subscription.id, event_id=event.id, payload=payload(event, referral), next_attempt_at=utcnow()
            )
        )
        count += 1
    return count


# ----------------------------------------------------------------------------- one attempt


@dataclass
class Result:
    outcome: str  # one of OUTCOMES
    status_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "delivered"


class _Deadline:
    """One deadline for a whole attempt. A watchdog shuts the socket down when it passes, so a
    receiver that answers one byte at a time cannot hold the attempt past it (a per-read
    socket timeout would restart at every byte)."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError()
        return left

    def guard(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self._timer is None:
                self._timer = threading.Timer(max(0.0, self.end - time.monotonic()), self._fire)
                self._timer.daemon = True
                self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            if self._sock is not None:
                try:
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._sock = None


def _connect(addresses, port: int, deadline: _Deadline) -> socket.socket:
    last: Exception = OSError()
    for address in addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(deadline.remaining())
            deadline.guard(sock)
            sock.connect((str(address), port))
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if deadline.expired or isinstance(exc, TimeoutError):
                raise TimeoutError() from None
    raise last


class _VettedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an address that was already checked: it sends the URL's host in
    `Host` but never looks the name up again."""

    def __init__(self, target: Target, addresses, deadline: _Deadline):
        super().__init__(target.host, target.port, timeout=deadline.remaining())
        self._addresses = addresses
        self._deadline = deadline

    def connect(self):
        self.sock = _connect(self._addresses, self.port, self._deadline)


class _VettedHTTPSConnection(http.client.HTTPSConnection):
    """As `_VettedHTTPConnection`, over TLS: SNI and the certificate check use the host name."""

    def __init__(self, target: Target, addresses, deadline: _Deadline, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=deadline.remaining(), context=context)
        self._addresses = addresses
        self._deadline = deadline
        self._tls = context

    def connect(self):
        raw = _connect(self._addresses, self.port, self._deadline)
        raw.settimeout(self._deadline.remaining())
        tls = self._tls.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
        self._deadline.guard(tls)  # the watchdog also bounds the handshake
        tls.do_handshake()
        self.sock = tls


def send(url: str, body: bytes, headers: dict[str, str], policy: Policy) -> Result:
    """POST `body` to `url` under `policy`: resolve and vet the host now, connect to the vetted
    address, one total deadline, no redirect followed. Never raises for network faults."""
    try:
        target = parse_url(url, policy)
        addresses = vetted_addresses(target, policy)
    except (InvalidData, AddressRefused):
        return Result("address_refused")
    except Unresolvable:
        return Result("unreachable")
    deadline = _Deadline(policy.timeout_s)
    connection: http.client.HTTPConnection | None = None
    try:
        if target.scheme == "https":
            context = policy.ssl_context or ssl.create_default_context()
            connection = _VettedHTTPSConnection(target, addresses, deadline, context)
        else:
            connection = _VettedHTTPConnection(target, addresses, deadline)
        connection.request("POST", target.path, body=body, headers=headers)
        if connection.sock is not None:
            connection.sock.settimeout(deadline.remaining())
        reply = connection.getresponse()
        status = reply.status
        reply.close()
    except Exception:  # noqa: BLE001 - every network fault is one of two outcomes, by design
        return Result("timeout" if deadline.expired or time.monotonic() >= deadline.end else "unreachable")
    finally:
        deadline.cancel()
        if connection is not None:
            connection.close()
    if deadline.expired:
        return Result("timeout")
    if 200 <= status < 300:
        return Result("delivered", status)
    return Result("http_status", status)  # 3xx included: no redirect is followed


# ----------------------------------------------------------------------------- the worker


@dataclass
class _Job:
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    secret: str
    payload: dict
    due_at: datetime
    result: Result | None = None
    duration_ms: int = 0


def _headers(job: _Job, body: bytes) -> dict[str, str]:
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
            _Job(delivery.id, subscription.id, subscription.url, subscription.secret, dict(delivery.payload), delivery.next_attempt_at)
        )
    # Claim each until it has surely been attempted: a group starts once the pool has worked
    # through the attempts submitted before it (at most ceil(earlier / pool size) deadlines),
    # then its own go one after another. A worker that dies mid-pass leaves them due then.
    groups: dict[uuid.UUID, list[_Job]] = {}
    earlier = 0
    for subscription_id, jobs in due.items():
        waves = -(-earlier // policy.pool_size)
        for position, job in enumerate(jobs):
            lease = now + timedelta(seconds=(waves + position + 1) * policy.timeout_s + 5)
            claimed = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == job.delivery_id, WebhookDelivery.status == "pending",
                       WebhookDelivery.next_attempt_at <= now)
                .values(next_attempt_at=lease)
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed:
                groups.setdefault(subscription_id, []).append(job)
        earlier += len(jobs)
    session.commit()
    groups = {key: jobs for key, jobs in groups.items() if jobs}
    if not groups:
        return 0
    own_pool = pool is None
    pool = pool or ThreadPoolExecutor(max_workers=policy.pool_size, thread_name_prefix="webhook")
    attempted = 0
    lost: OperationalError | None = None
    try:
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
    finally:
        if own_pool:
            pool.shutdown(wait=True)
    if lost is not None:
        raise lost
    return attempted


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
    attempted = 0
    subscription = session.get(WebhookSubscription, jobs[0].subscription_id)
    for job in jobs:
        delivery = session.get(WebhookDelivery, job.delivery_id)
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
