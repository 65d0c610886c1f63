"""Which network addresses the video fetcher may connect to (the SSRF guard's address policy).

The rule: an address is fetched when it is *public*, or when it is inside an allow-listed network,
or when the URL's host is an allow-listed name. "Public" is the stdlib ``ipaddress`` module's
``is_global`` (the IANA special-purpose registries) plus the checks that module leaves out on
Python 3.11: multicast and IPv6 site-local addresses, IPv4-mapped IPv6 addresses judged by their
IPv4 form, and IPv6 addresses that carry an IPv4 address a gateway would reach (6to4, NAT64) judged
by that IPv4 address too.

Unspecified (``0.0.0.0``, ``::``), multicast and broadcast addresses are never fetched, allow-listed
or not: they are never one HTTP server (``0.0.0.0`` even reaches the local host on Linux), so an
allow-list entry such as ``0.0.0.0/0`` still does not let them through.

Host names are never judged by their spelling: the fetcher resolves them and judges every address
they resolve to. IP literals are parsed here instead of being sent to a resolver, including the
legacy IPv4 spellings (``2130706433``, ``0x7f.1``, ``127.1``) that ``inet_aton``, and so many
resolvers and browsers, accept: they are read exactly the way ``getaddrinfo`` would read them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "AddressPolicy",
    "IPAddress",
    "IPNetwork",
    "connect_address",
    "is_hostname",
    "parse_ip_literal",
    "show_address",
    "why_not_public",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PRIVATE_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("fc00::/7"),
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")
"""What an ``inet_aton`` spelling of an IPv4 address may contain (decimal, octal, hex parts)."""
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, or None when it is a name to resolve.

    IPv6 zone ids (``fe80::1%eth0``) are not an address here (None): the fetcher refuses them.
    """
    if "%" in host:
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_hostname(host: str) -> bool:
    """Whether ``host`` (ASCII, lower case) is a syntactically valid DNS name."""
    return _HOSTNAME.fullmatch(host) is not None


def show_address(address: IPAddress) -> str:
    """How messages spell an address: an IPv4-mapped one as ``::ffff:10.0.0.1``, whatever the Python version."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def connect_address(address: IPAddress) -> IPAddress:
    """The address to judge and connect to: an IPv4-mapped IPv6 address is its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _never_fetched(address: IPAddress) -> str | None:
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address == _BROADCAST:
        return "a broadcast address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 or NAT64 gateway would forward ``address`` to, if any."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def why_not_public(address: IPAddress) -> str | None:
    """None for a public address, else what it is ("a private address", "a loopback address", ...)."""
    address = connect_address(address)
    never = _never_fetched(address)
    if never:
        return never
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = why_not_public(embedded)
            if reason:
                return f"an address that leads to {embedded}, {reason}"
            if address in _NAT64:
                return None  # the well-known NAT64 prefix of a public IPv4 address (DNS64 answers)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if any(address in network for network in _PRIVATE_NETWORKS):
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a special-purpose (non-public) address"
    return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The allow-list: networks whose addresses are fetched even when not public, and host names
    whose every address is.

    Built with :meth:`from_entries` from strings such as ``"127.0.0.1/32"``, ``"10.1.2.3"`` (one
    address), ``"fd00::/8"`` or ``"media.internal"`` (a host name: exact match, case-insensitive,
    no wildcards). An IPv4-mapped IPv6 address is matched by its IPv4 form.
    """

    networks: tuple[IPNetwork, ...] = ()
    hostnames: frozenset[str] = frozenset()

    @classmethod
    def from_entries(cls, entries: Iterable[str | IPAddress | IPNetwork]) -> AddressPolicy:
        """Parse allow-list entries; a malformed one is a ``ValueError`` (a configuration error)."""
        networks: list[IPNetwork] = []
        hostnames: set[str] = set()
        for entry in entries:
            if isinstance(entry, ipaddress.IPv4Network | ipaddress.IPv6Network):
                networks.append(entry)
                continue
            if isinstance(entry, ipaddress.IPv4Address | ipaddress.IPv6Address):
                networks.append(ipaddress.ip_network(entry))
                continue
            text = entry.strip()
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            name = text.lower().rstrip(".")
            if not name or not is_hostname(name) or parse_ip_literal(name) is not None:
                raise ValueError(f"allow-list entry {entry!r} is neither a network, an address nor a host name")
            hostnames.add(name)
        return cls(networks=tuple(networks), hostnames=frozenset(hostnames))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hostnames

    def allows_address(self, address: IPAddress) -> bool:
        candidates = {address, connect_address(address)}
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.networks
        )

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """None when the fetcher may connect to ``address`` (which ``host`` resolved to), else why not."""
        never = _never_fetched(connect_address(address))
        if never:
            return never
        reason = why_not_public(address)
        if reason is None or self.allows_host(host) or self.allows_address(address):
            return None
        return reason
