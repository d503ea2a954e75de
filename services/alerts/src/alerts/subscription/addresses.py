"""Where a webhook may go: public addresses only (SSRF protection).

A URL is refused when its host is, or resolves to, a loopback, private, link-local, shared,
multicast, reserved or unspecified address -- at subscription time AND before every delivery,
and the delivery then connects to the very address that was checked (no second lookup a DNS
rebinding could change). Redirects are never followed. A test-only allowlist (refused in
production by the settings) lets tests reach a local receiver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

REFUSED = (
    "The webhook URL points at a loopback, private, link-local, multicast or reserved address; "
    "webhooks only go to public addresses."
)


class AddressRefused(ValueError):
    """The URL may not be used; ``reason`` is safe to show (it never quotes the URL)."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (lower case), for Host and TLS server name
    port: int
    path: str  # path and query

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, ip: IP) -> str:
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(ip: IP) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public(embedded):
            return False
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
        or ip.is_unspecified or not ip.is_global
    )


class AddressGuard:
    def __init__(
        self,
        *,
        https_required: bool,
        allow_networks: Sequence[str] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        self.https_required = https_required
        self.allow = [ipaddress.ip_network(n, strict=False) for n in allow_networks]
        self.resolver = resolver

    def parse(self, url: str) -> Target:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise AddressRefused("The webhook URL is not a valid URL.", "invalid_url") from exc
        schemes = ("https",) if self.https_required else ("https", "http")
        if parts.scheme not in schemes:
            raise AddressRefused(f"The webhook URL must use {' or '.join(schemes)}.", "scheme")
        if parts.username or parts.password:
            raise AddressRefused("The webhook URL may not carry credentials.", "credentials")
        if not parts.hostname:
            raise AddressRefused("The webhook URL has no host.", "invalid_url")
        if parts.fragment:
            raise AddressRefused("The webhook URL may not have a fragment.", "invalid_url")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Target(parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80), path)

    def allowed(self, ip: IP) -> bool:
        return is_public(ip) or any(ip in net for net in self.allow if ip.version == net.version)

    async def addresses(self, target: Target) -> list[IP]:
        """The checked addresses of the target; refuses if any answer is not allowed."""
        try:
            literal = ipaddress.ip_address(target.host)
            found: list[IP] = [literal]
        except ValueError:
            try:
                answers = await self.resolver(target.host, target.port)
            except (OSError, UnicodeError) as exc:
                raise AddressRefused("The webhook URL's host does not resolve.", "unresolvable") from exc
            found = []
            for a in answers:
                try:
                    found.append(ipaddress.ip_address(a.split("%", 1)[0]))
                except ValueError:
                    continue
            if not found:
                raise AddressRefused("The webhook URL's host does not resolve.", "unresolvable")
        # One bad answer refuses the whole host: an attacker controls which answer is used.
        if not all(self.allowed(ip) for ip in found):
            raise AddressRefused(REFUSED, "non_public_address")
        return found

    async def vet(self, url: str) -> tuple[Target, list[IP]]:
        target = self.parse(url)
        return target, await self.addresses(target)
