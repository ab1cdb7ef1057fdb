"""One delivery attempt: a POST to the vetted address of a subscriber's URL, under one total
deadline, with no redirect followed; its outcome is one of `policy.OUTCOMES`, never an
exception."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from core.errors import InvalidData
from core.webhooks.addresses import AddressRefused, Target, Unresolvable, parse_url, vetted_addresses
from core.webhooks.policy import Policy


@dataclass
class Result:
    """The outcome of one attempt (one of `OUTCOMES`) and the receiver's status, if it answered."""

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
    """A socket connected to the first of the vetted addresses that accepts, within the deadline."""
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
