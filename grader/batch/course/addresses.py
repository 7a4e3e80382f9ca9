"""Where the grader may connect when a student names a host: public addresses only.

A repository URL (`--repos`) or a deployment URL (`--live`) comes from a student. Resolved
without care, it makes the grader reach what the student cannot: the instructor's network, a
cloud metadata service, the grading machine itself. `public_addresses` resolves the name once,
refuses it if any address is not global, and returns the addresses that the connection must
then use (git through `http.curloptResolve`, the live probe through `pinned`), so that a
second lookup cannot answer differently.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

# host, port -> the addresses it resolves to (tests pass their own: no DNS server here)
Resolver = Callable[[str, int], list[str]]
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class Refused(ValueError):
    """A URL or an address the grader will not use; the message says why, for the report."""


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of host, as this machine resolves them (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise Refused(f"{host} does not resolve ({e})") from None
    return sorted({str(info[4][0]) for info in infos})


def is_public(address: str) -> bool:
    """A global unicast address (not private, loopback, link-local, multicast, reserved,
    shared 100.64/10, documentation, or an IPv4 address hidden in IPv6)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None:
            return is_public(str(mapped))
    return bool(ip.is_global) and not ip.is_multicast and not ip.is_reserved


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def public_addresses(
    host: str, port: int, resolver: Resolver = system_resolver, allow_loopback: bool = False
) -> list[str]:
    """The addresses to connect to for host, or `Refused`: every address must be public
    (loopback too, when the test-only switch allows it)."""
    addresses = resolver(host, port)
    if not addresses:
        raise Refused(f"{host} does not resolve")
    bad = [a for a in addresses if not (is_public(a) or (allow_loopback and is_loopback(a)))]
    if bad:
        raise Refused(
            f"{host} resolves to {', '.join(bad)}, a private, loopback or reserved address: "
            "the grader only connects to public addresses"
        )
    return addresses
