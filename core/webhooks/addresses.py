"""Vetting a subscriber's URL and the addresses its host resolves to.

The worker runs inside the hospital's network, so a URL must never make it reach inside:
the host is resolved when the URL is registered and again at every delivery, and every
address it resolves to must be a public one (`refusal`), whatever notation it is written in.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import InvalidData
from core.webhooks.policy import Policy


def system_resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the operating system's resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    # An IPv4 or IPv6 address is a string (typeshed allows the (int, bytes) of other families too).
    return [str(info[4][0]) for info in infos]


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
    """One part of an IPv4 address in the C library's notation: hex (`0x`), octal (leading 0) or decimal."""
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


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (IPv4-mapped `::ffff:a.b.c.d`, 6to4, NAT64,
    IPv4-compatible), or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _NAT64_LOCAL or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _never_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """The classes never meaningful for a webhook, whatever the setting."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved and not address.is_loopback:  # ::1 lies in IPv6's reserved ::/8
        return "reserved"
    return None


def _not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """The classes that are inside some network rather than on the internet."""
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address in _SHARED:
        return "shared (CGNAT)"
    if isinstance(address, ipaddress.IPv6Address) and (
        address in ipaddress.ip_network("fc00::/7") or address in _SITE_LOCAL
    ):
        return "unique-local"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


def refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool = False) -> str | None:
    """Why the worker may not connect to `address` (a class name such as "loopback"), or None.

    IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible,
    6to4, NAT64) are judged by the IPv4 address they carry; Teredo is refused. With
    `allow_private`, only the classes never meaningful for a webhook are refused."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "link-local"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return refusal(embedded, allow_private)
        if address.teredo is not None:
            return "reserved"
    reason = _never_allowed(address)
    if reason is not None or allow_private:
        return reason
    return _not_public(address)


@dataclass(frozen=True)
class Target:
    """A subscriber's URL, parsed and checked for form (not yet for its addresses)."""

    scheme: str
    host: str  # as written (lower case, IDNA), for the Host header and TLS
    port: int
    path: str  # path and query
    literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None  # the host when it is an address


def _invalid(message: str, problem: str) -> InvalidData:
    """The InvalidData of a URL that cannot be a subscriber's, with the problem under `url`."""
    return InvalidData(message, {"url": [problem]})


def _host(hostname: str) -> tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address | None]:
    """The host as written (lower case, IDNA, no trailing dot) and the address it is when it is
    one (IPv6 in brackets, IPv4 in any notation); InvalidData when it is neither an address nor
    a host name."""
    host = hostname
    if host.endswith(".") and ":" not in host:
        host = host[:-1]
    if not host or "%" in host:
        raise _invalid("The webhook URL has no valid host.", "Not a valid host.")
    if ":" in host:
        try:
            return host, ipaddress.IPv6Address(host)
        except ValueError:
            raise _invalid("The webhook URL has no valid host.", "Not a valid host.") from None
    try:
        host = host.encode("idna").decode("ascii").lower()
        literal = parse_ipv4(host)
    except (UnicodeError, ValueError):
        raise _invalid("The webhook URL has no valid host.", "Not a valid host.") from None
    if literal is None and not _HOST_NAME.match(host):
        raise _invalid("The webhook URL has no valid host.", "Not a valid host.")
    return host, literal


def parse_url(url: str, policy: Policy) -> Target:
    """The parts of a subscriber's URL, or InvalidData saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _invalid("The webhook URL is not valid.", "Not a valid URL.") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if scheme not in allowed:
        raise _invalid("The webhook URL must use https.", "Must be an https URL.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _invalid("The webhook URL must not hold credentials.", "Must not contain a user name or password.")
    host, literal = _host(parts.hostname or "")
    if port == 0:
        raise _invalid("The webhook URL has no valid port.", "Not a valid port.")
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
