"""Fetching a video by URL without letting the URL reach what the service can reach (SSRF).

Each hop (the URL, then every redirect) goes through the same steps:

1. **Parse** with httpx's own URL parser (the one that builds the request, so the check and the
   request cannot read the URL differently): ``http``/``https`` only, a host, no credentials,
   a port in 1..65535.
2. **Resolve** the host once: IP literals (the legacy IPv4 spellings too) are read locally
   (:func:`infra.video.netguard.parse_ip_literal`), names go to the injectable ``resolver``.
3. **Judge every address** the host resolves to (:class:`infra.video.netguard.AddressPolicy`):
   one non-public address that is not allow-listed refuses the URL (a mixed answer is the
   usual DNS-rebinding set-up), before any socket is opened.
4. **Connect to the address that was judged** (anti DNS-rebinding): the request goes to
   ``scheme://<address>:<port>/path`` with the ``Host`` header set to the URL's host and, for
   https, httpcore's ``sni_hostname`` request extension, so TLS sends the real name as SNI and
   verifies the certificate against it. No second DNS lookup happens. Such requests carry
   ``Connection: close``: the shared client's pool keys connections by address, and a pooled
   TLS connection verified for one name must not carry a request for another name on the same
   address.
5. **Redirects** are followed here, never by httpx: at most ``max_redirects``, the ``Location``
   resolved against the current URL, and the new URL goes through steps 1-4 again, so a
   redirect to a private address is refused without connecting to it.

The request is built from scratch (not with ``client.build_request``): it carries the client's
User-Agent and nothing else of the client's: no default headers, no cookies from the client's
jar, no auth (``auth=None``); cookies a remote sets are dropped from the shared jar again.
``Accept-Encoding: identity`` is asked for and a compressed answer refused, so the byte limit
counts the bytes that land on disk and no decompression bomb is inflated.

Every failure removes the destination file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from domain.errors import PayloadTooLargeError, ServiceUnavailableError
from domain.video.errors import SourceUnavailableError, UnsafeUrlError
from domain.video.schemas import FetchedVideo
from infra.video.netguard import (
    AddressPolicy,
    IPAddress,
    IPNetwork,
    connect_address,
    is_hostname,
    parse_ip_literal,
    show_address,
)
from infra.video.spool import Spool, remove

__all__ = ["Resolver", "SafeVideoFetcher", "system_resolver"]

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress | str]]]
"""``(host, port) -> addresses``: how a host name becomes addresses (injectable for tests)."""

DEFAULT_MAX_BYTES = 2 << 30
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
VIDEO_MEDIA_TYPES = frozenset(
    {
        "application/octet-stream",
        "binary/octet-stream",
        "application/mp4",
        "application/x-matroska",
        "application/ogg",
        "application/mxf",
    }
)
"""Besides ``video/*`` and a missing type: what a server may call a video (the decoder checks the bytes)."""
_ONLY_PUBLIC = "only public addresses are fetched"


async def system_resolver(host: str, port: int) -> list[IPAddress | str]:
    """The event loop's ``getaddrinfo`` (TCP), addresses in the order the system prefers them."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class _Hop:
    url: httpx.URL
    host: str
    """ASCII (IDNA) host, lower case, as resolved and as sent in SNI."""
    port: int
    literal: IPAddress | None


class SafeVideoFetcher:
    """Implements :class:`domain.video.ports.VideoFetcher` (and ``UrlGuard``) on the app's shared httpx client.

    ``allow``: allow-list entries (networks such as ``"127.0.0.1/32"`` or ``"10.0.0.0/8"``, single
    addresses, or exact host names); an address inside an allow-listed network, or any address of
    an allow-listed host name, is fetched even when it is not public (see
    :mod:`infra.video.netguard`). Public addresses are always fetched.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allow: Collection[str | IPAddress | IPNetwork] = (),
        max_redirects: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        total_timeout: float = 600.0,
        resolver: Resolver = system_resolver,
    ) -> None:
        if max_bytes < 1 or max_redirects < 0 or min(connect_timeout, read_timeout, total_timeout) <= 0:
            raise ValueError("max_bytes and the timeouts must be positive, max_redirects not negative")
        self._client = client
        self._max_bytes = max_bytes
        self._policy = AddressPolicy.from_entries(allow)
        self._max_redirects = max_redirects
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._total_timeout = total_timeout
        self._resolver = resolver

    async def check(self, url: str) -> None:
        """Implements :class:`domain.video.ports.UrlGuard`: refuse now what :meth:`fetch` would refuse
        before connecting (the URL's form, and where its host resolves to), without connecting anywhere.

        An early answer for the client when a job is submitted; :meth:`fetch` judges everything
        again (the answer of a DNS lookup may change in between). ``UnsafeUrlError`` for a refused
        URL, ``SourceUnavailableError`` when the host does not resolve.
        """
        await self._vet(self._parse(url, redirected=False), redirected=False)

    async def fetch(self, url: str, destination: Path) -> FetchedVideo:
        """Download ``url`` into ``destination``.

        Raises ``UnsafeUrlError`` (422) for a URL or redirect it refuses, ``PayloadTooLargeError``
        (413) past ``max_bytes``, ``SourceUnavailableError`` (422) when the remote fails, times out
        or sends no video, ``ServiceUnavailableError`` (503) when the shared client's pool is full.
        """
        try:
            with anyio.fail_after(self._total_timeout):
                return await self._fetch(url, destination)
        except TimeoutError:
            remove(destination)
            raise SourceUnavailableError(
                f"the download did not finish within {self._total_timeout:g} seconds"
            ) from None
        except BaseException:
            remove(destination)
            raise

    async def _fetch(self, url: str, destination: Path) -> FetchedVideo:
        hop = self._parse(url, redirected=False)
        redirects = 0
        while True:
            addresses = await self._vet(hop, redirected=redirects > 0)
            response = await self._send(hop, addresses)
            try:
                if response.status_code in REDIRECT_STATUSES:
                    if redirects >= self._max_redirects:
                        raise SourceUnavailableError(f"the remote redirected more than {self._max_redirects} times")
                    hop = self._parse(self._location(hop, response), redirected=True)
                    redirects += 1
                    continue
                self._check_answer(response)
                size = await self._save(hop, response, destination)
            finally:
                await response.aclose()
            content_type = response.headers.get("content-type")
            return FetchedVideo(path=destination, size=size, content_type=content_type, final_url=str(hop.url))

    # -- steps 1 to 3: parse and judge a URL ------------------------------------------------

    def _parse(self, url: str | httpx.URL, *, redirected: bool) -> _Hop:
        what = "the redirect target" if redirected else "the URL"
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise UnsafeUrlError(f"{what} is not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            shown = parsed.scheme or "none"
            raise UnsafeUrlError(f"{what} has the scheme {shown!r}; only http and https URLs are fetched")
        if parsed.userinfo:
            raise UnsafeUrlError(f"{what} carries credentials (user:password@); they are not accepted")
        try:
            host = parsed.raw_host.decode("ascii").lower()
        except UnicodeDecodeError:
            raise UnsafeUrlError(f"{what} has an invalid host") from None
        if not host:
            raise UnsafeUrlError(f"{what} has no host")
        port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
        if not 0 < port < 65536:
            raise UnsafeUrlError(f"{what} has the invalid port {port}")
        literal = parse_ip_literal(host)
        if literal is None and not is_hostname(host):
            raise UnsafeUrlError(f"{what} has an invalid host")
        return _Hop(url=parsed, host=host, port=port, literal=literal)

    async def _resolve(self, hop: _Hop) -> list[IPAddress]:
        if hop.literal is not None:
            return [hop.literal]
        try:
            with anyio.fail_after(self._connect_timeout):
                answers = await self._resolver(hop.host, hop.port)
        except TimeoutError:
            raise SourceUnavailableError(f"resolving {hop.host} timed out") from None
        except OSError:
            raise SourceUnavailableError(f"the host {hop.host} could not be resolved") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            address = parse_ip_literal(str(answer)) if isinstance(answer, str) else answer
            if address is None:  # a scoped IPv6 address ("fe80::1%eth0") or garbage: never fetched
                raise UnsafeUrlError(f"the host {hop.host} resolves to {answer}, which is not fetched")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise SourceUnavailableError(f"the host {hop.host} has no address")
        return addresses

    async def _vet(self, hop: _Hop, *, redirected: bool) -> list[IPAddress]:
        """The addresses to connect to, in order; every one is allowed, or the URL is refused."""
        addresses = await self._resolve(hop)
        for address in addresses:
            reason = self._policy.refusal(hop.host, address)
            if reason is None:
                continue
            shown = show_address(address)
            if hop.literal is not None and str(hop.literal) == hop.host:
                problem = f"the host {shown} is {reason}"
            elif hop.literal is not None:
                problem = f"the host {hop.host} means {shown}, {reason}"
            else:
                problem = f"the host {hop.host} resolves to {shown}, {reason}"
            prefix = "the redirect is refused: " if redirected else ""
            raise UnsafeUrlError(f"{prefix}{problem}; {_ONLY_PUBLIC}")
        return [connect_address(address) for address in addresses]

    # -- step 4: one request to a judged address ---------------------------------------------

    def _request(self, hop: _Hop, address: IPAddress) -> httpx.Request:
        headers = {
            "Host": hop.url.netloc.decode("ascii"),
            "Accept": "video/*, application/octet-stream;q=0.9, */*;q=0.5",
            "Accept-Encoding": "identity",
            "Connection": "close",
        }
        user_agent = self._client.headers.get("User-Agent")
        if user_agent:
            headers["User-Agent"] = user_agent
        timeouts = {
            "connect": self._connect_timeout,
            "read": self._read_timeout,
            "write": self._read_timeout,
            "pool": self._connect_timeout,
        }
        extensions: dict[str, object] = {"timeout": timeouts}
        if hop.url.scheme == "https" and hop.literal is None:
            extensions["sni_hostname"] = hop.host.rstrip(".")
        pinned = hop.url.copy_with(host=str(address), port=hop.port, fragment=None)
        return httpx.Request("GET", pinned, headers=headers, extensions=extensions)

    async def _send(self, hop: _Hop, addresses: Sequence[IPAddress]) -> httpx.Response:
        """Send to the first judged address that accepts a connection."""
        failure = f"could not connect to {hop.host}"
        for address in addresses:
            try:
                response = await self._client.send(
                    self._request(hop, address), stream=True, auth=None, follow_redirects=False
                )
            except httpx.PoolTimeout:
                raise ServiceUnavailableError("too many downloads are in progress; retry shortly") from None
            except httpx.ConnectTimeout:
                failure = f"connecting to {hop.host} timed out after {self._connect_timeout:g} seconds"
                continue
            except httpx.ConnectError as error:
                tls = any(isinstance(link, ssl.SSLError) for link in (error.__cause__, error.__context__))
                failure = f"the TLS handshake with {hop.host} failed" if tls else f"could not connect to {hop.host}"
                logger.info("fetch: connecting to %s (%s) failed: %s", hop.host, address, error)
                continue
            except httpx.TimeoutException:
                raise SourceUnavailableError(
                    f"{hop.host} did not answer within {self._read_timeout:g} seconds"
                ) from None
            except httpx.TransportError as error:
                logger.info("fetch: request to %s (%s) failed: %r", hop.host, address, error)
                raise SourceUnavailableError(f"the connection to {hop.host} failed") from None
            finally:
                self._forget_cookies(address)
            return response
        raise SourceUnavailableError(failure)

    def _forget_cookies(self, address: IPAddress) -> None:
        """Drop what a remote set in the shared client's jar (it is never sent, but it would pile up)."""
        names = {str(address), f"[{address}]", f"[{address}].local"}
        jar = self._client.cookies.jar
        for cookie in list(jar):
            if cookie.domain.lstrip(".") in names:
                with contextlib.suppress(KeyError):
                    jar.clear(cookie.domain, cookie.path, cookie.name)

    # -- the answer ---------------------------------------------------------------------------

    def _location(self, hop: _Hop, response: httpx.Response) -> httpx.URL:
        location = response.headers.get("location")
        if not location:
            raise SourceUnavailableError(f"the remote answered {_status(response)} without a Location")
        try:
            return hop.url.join(location)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise UnsafeUrlError("the redirect target is not a valid URL") from None

    def _check_answer(self, response: httpx.Response) -> None:
        if response.status_code not in (200, 203):
            raise SourceUnavailableError(f"the remote answered {_status(response)}")
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type and not media_type.startswith("video/") and media_type not in VIDEO_MEDIA_TYPES:
            raise SourceUnavailableError(f"the remote sent {media_type}, not a video")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise SourceUnavailableError(f"the remote sent a {encoding}-encoded body; videos are fetched uncompressed")
        declared = response.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self._max_bytes:
            raise PayloadTooLargeError(
                f"the remote announces {int(declared)} bytes; the limit is {self._max_bytes} bytes"
            )

    async def _save(self, hop: _Hop, response: httpx.Response, destination: Path) -> int:
        spool = await Spool.create(destination)
        try:
            async for chunk in response.aiter_raw():
                if spool.size + len(chunk) > self._max_bytes:
                    raise PayloadTooLargeError(f"the video is larger than the limit of {self._max_bytes} bytes")
                await spool.write(chunk)
            size = await spool.close()
        except httpx.ReadTimeout:
            spool.discard()
            raise SourceUnavailableError(f"{hop.host} stopped sending for {self._read_timeout:g} seconds") from None
        except httpx.TransportError as error:
            spool.discard()
            logger.info("fetch: reading from %s failed: %r", hop.host, error)
            raise SourceUnavailableError(f"the connection to {hop.host} broke before the whole video arrived") from None
        except BaseException:
            spool.discard()
            raise
        if size == 0:
            remove(destination)
            raise SourceUnavailableError("the remote sent an empty body")
        return size


def _status(response: httpx.Response) -> str:
    """``"404 Not Found"``: the standard phrase, not the remote's own text."""
    phrase = httpx.codes.get_reason_phrase(response.status_code)
    return f"{response.status_code} {phrase}".rstrip()
