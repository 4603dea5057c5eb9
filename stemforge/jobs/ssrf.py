"""Callback URLs must not reach into the private network (SSRF).

A URL's host is resolved and refused unless every address is public. The check happens at
submission (a 422) and again at every connection, which then goes to the address that was checked,
so a name that re-resolves to a private address later (DNS rebinding) cannot slip through.
"""

import ipaddress
import socket
from collections.abc import Callable, Collection

import httpx

from stemforge.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# Deprecated IPv4-compatible (::a.b.c.d, RFC 4291) and IPv4-translated (::ffff:0:a.b.c.d, RFC 2765)
# forms: stacks may still route them to the IPv4 address inside.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


class CallbackURLRefused(InvalidRequest):
    def __init__(self, message: str) -> None:
        super().__init__("callback_url", message)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, -compatible or -translated,
    NAT64, 6to4 or Teredo."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in net for net in (_NAT64, _NAT64_LOCAL, _IPV4_COMPATIBLE, _IPV4_TRANSLATED)):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (literal IPs, decimal and hex forms included)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise CallbackURLRefused(f"host {host!r} does not resolve ({exc})") from None
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def check_callback_host(host: str, port: int, allowed_hosts: Collection[str]) -> list[IPAddress]:
    """The addresses to connect to, or ``CallbackURLRefused`` naming the private one."""
    if host.lower().strip("[]") in allowed_hosts:
        return []  # exempt: connect by name as usual
    addresses = resolve(host.strip("[]"), port)
    private = [str(a) for a in addresses if not is_public(a)]
    if private or not addresses:
        raise CallbackURLRefused(
            f"host {host!r} resolves to non-public address(es) {private}; callbacks go to public "
            "addresses only (CALLBACK_ALLOWED_HOSTS lists exceptions)"
        )
    return addresses


def ascii_host(url: httpx.URL) -> str:
    """The host as it goes on the wire (punycode for international names): ``URL.host`` decodes
    it with strict IDNA 2008, which raises on names like ``☃.example``."""
    return url.raw_host.decode("ascii")


def check_callback_url(url: str, allowed_hosts: Collection[str]) -> None:
    try:
        parsed = httpx.URL(url)
        host = ascii_host(parsed)
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise CallbackURLRefused(f"not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise CallbackURLRefused("must be an http or https URL")
    check_callback_host(host, parsed.port or (443 if parsed.scheme == "https" else 80), allowed_hosts)


# ``check(host, port, allowed_hosts)``: the addresses to connect to (``[]``: by name, an exempt
# host), or an ``InvalidRequest`` naming the field whose URL it is.
HostCheck = Callable[[str, int, Collection[str]], list[IPAddress]]


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolves and checks the host at each request (``check``: callback URLs' rule by default),
    then connects to the checked address (keeping the Host header and the TLS server name of
    the original host). ``close_inner``: false for a transport the caller keeps."""

    def __init__(
        self,
        allowed_hosts: Collection[str],
        inner: httpx.AsyncBaseTransport | None = None,
        check: HostCheck = check_callback_host,
        close_inner: bool = True,
    ) -> None:
        self._allowed = allowed_hosts
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._check = check
        self._close_inner = close_inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        host = ascii_host(url)
        addresses = await asyncio.to_thread(self._check, host, port, self._allowed)
        if addresses:
            address = addresses[0]
            literal = f"[{address}]" if address.version == 6 else str(address)
            request.url = url.copy_with(host=literal)
            request.headers["host"] = url.netloc.decode("ascii")
            request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self._close_inner:
            await self._inner.aclose()
