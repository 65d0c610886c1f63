"""SafeVideoFetcher: SSRF refusals (proved without a packet leaving loopback) and real downloads.

Refusals of non-loopback addresses are proved on a client whose transport is a recorder
(``httpx.MockTransport``): nothing reaches a socket, and the test checks the transport was never
called. Refusals of loopback addresses are proved against a trap listener bound to that very
address, which counts zero connections. Downloads run against tests/media_server.py on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from domain.errors import PayloadTooLargeError, ServiceUnavailableError
from domain.video.errors import SourceUnavailableError, UnsafeUrlError
from infra.video.fetch import SafeVideoFetcher
from infra.video.netguard import AddressPolicy, IPAddress, why_not_public
from tests.media_server import MediaServer, Trap, media_server, payload, trap

LOOPBACK_ONLY = ("127.0.0.1/32",)
USER_AGENT = "video-opusclip-tests/1"


class Body(httpx.AsyncByteStream):
    """A response body that arrives as a stream, as from a real transport (``content=`` would be pre-read)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._data:
            yield self._data


def answer(status: int = 200, body: bytes = b"v", **headers: str) -> httpx.Response:
    """A streamed response; header names in snake case (``content_type="video/mp4"``)."""
    fields = {name.replace("_", "-"): value for name, value in headers.items()}
    return httpx.Response(status, headers=fields, stream=Body(body))


class Recorder:
    """A transport that answers without any network, recording what it was asked."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = respond or (lambda _: answer(content_type="video/mp4"))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)


class FakeResolver:
    """Answers from a table; a name not in it is an error (the test did not expect a lookup)."""

    def __init__(self, table: dict[str, Sequence[str]] | None = None) -> None:
        self.table = dict(table or {})
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress | str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise AssertionError(f"unexpected lookup of {host}")
        return list(self.table[host])


def gone(path: Path) -> bool:
    """Sync file helpers: the checks are tiny, and ruff rightly flags path I/O inside coroutines."""
    return not path.exists()


def contents(path: Path) -> bytes:
    return path.read_bytes()


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    return tmp_path / "video.bin"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MediaServer]:
    files = tmp_path / "files"
    files.mkdir()
    (files / "clip.mp4").write_bytes(payload(100_000))
    with media_server(files) as running:
        yield running


@pytest.fixture
def loopback_trap() -> Iterator[Trap]:
    with trap("127.0.0.2") as listener:
        yield listener


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # as infra/http/client.py builds it; trust_env=False so a proxy in the environment cannot interfere
    async with httpx.AsyncClient(
        timeout=5.0, headers={"User-Agent": USER_AGENT}, follow_redirects=False, trust_env=False
    ) as shared:
        yield shared


def offline(recorder: Recorder, **options: object) -> tuple[SafeVideoFetcher, httpx.AsyncClient]:
    shared = httpx.AsyncClient(transport=httpx.MockTransport(recorder), headers={"User-Agent": USER_AGENT})
    return SafeVideoFetcher(shared, **options), shared  # type: ignore[arg-type]


def live(client: httpx.AsyncClient, **options: object) -> SafeVideoFetcher:
    settings: dict[str, object] = {"allow": LOOPBACK_ONLY, "read_timeout": 5.0, "total_timeout": 20.0}
    settings.update(options)
    return SafeVideoFetcher(client, **settings)  # type: ignore[arg-type]


# -- refused before any socket ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/video.mp4", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://192.168.1.1:8080/v.mp4", "a private address"),
        ("http://172.16.0.1/", "a private address"),
        ("http://100.64.0.1/", "a shared (carrier-grade NAT) address"),
        ("http://0.0.0.0/", "an unspecified address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://255.255.255.255/", "a broadcast address"),
        ("http://240.0.0.1/", "a reserved address"),
        ("http://[::1]/", "a loopback address"),
        ("http://[::]/", "an unspecified address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://[fd00::1]/", "a private address"),
        ("http://[fec0::1]/", "a site-local address"),
        ("http://[::ffff:169.254.169.254]/", "a link-local address"),
        ("http://[::ffff:10.0.0.1]/", "a private address"),
        ("http://[64:ff9b::a9fe:a9fe]/", "leads to 169.254.169.254"),
        ("http://[2002:a00:1::1]/", "leads to 10.0.0.1"),
        ("https://10.1.2.3:8443/v.mp4", "a private address"),
    ],
)
async def test_non_public_literals_are_refused_before_any_connection(url: str, reason: str, destination: Path) -> None:
    recorder = Recorder()
    resolver = FakeResolver()  # a literal is never looked up
    fetcher, shared = offline(recorder, resolver=resolver)
    async with shared:
        with pytest.raises(UnsafeUrlError) as refused:
            await fetcher.fetch(url, destination)
    assert reason in refused.value.message
    assert "only public addresses are fetched" in refused.value.message
    assert refused.value.status_code == 422
    assert recorder.requests == []
    assert resolver.calls == []
    assert gone(destination)


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["127.0.0.5"], "resolves to 127.0.0.5, a loopback address"),
        (["::1"], "resolves to ::1, a loopback address"),
        (["93.184.216.34", "10.0.0.1"], "resolves to 10.0.0.1, a private address"),
        (["2606:2800:220:1::1", "169.254.169.254"], "resolves to 169.254.169.254, a link-local address"),
        (["::ffff:127.0.0.1"], "resolves to ::ffff:127.0.0.1, a loopback address"),
        (["fe80::1%eth0"], "resolves to fe80::1%eth0, which is not fetched"),
    ],
)
async def test_a_name_resolving_to_any_non_public_address_is_refused(
    answers: list[str], reason: str, destination: Path
) -> None:
    recorder = Recorder()
    resolver = FakeResolver({"evil.test": answers})
    fetcher, shared = offline(recorder, resolver=resolver)
    async with shared:
        with pytest.raises(UnsafeUrlError) as refused:
            await fetcher.fetch("http://evil.test/video.mp4", destination)
    assert f"the host evil.test {reason}" in refused.value.message
    assert resolver.calls == [("evil.test", 80)]
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "the scheme 'file'"),
        ("ftp://example.com/video.mp4", "the scheme 'ftp'"),
        ("gopher://example.com/", "the scheme 'gopher'"),
        ("data:video/mp4;base64,AAAA", "the scheme 'data'"),
        ("javascript:alert(1)", "the scheme 'javascript'"),
        ("//example.com/video.mp4", "the scheme 'none'"),
        ("", "the scheme 'none'"),
        ("http:///video.mp4", "has no host"),
        ("https://", "has no host"),
        ("http://user:pass@example.com/video.mp4", "carries credentials"),
        ("http://user@example.com/video.mp4", "carries credentials"),
        ("http://example.com\\@10.0.0.1/", "carries credentials"),
        ("http://exa mple.com/", "invalid host"),
        ("http://exa%2fmple.com/", "invalid host"),
        ("http://[fe80::1%25eth0]/", "invalid host"),
        ("http://example.com:0/", "invalid port"),
        ("http://example.com:99999/", "invalid port"),
        ("http://0177.0.0.1/", "not a valid URL"),
    ],
)
async def test_urls_that_are_not_plain_http_are_refused(url: str, message: str, destination: Path) -> None:
    recorder = Recorder()
    resolver = FakeResolver()
    fetcher, shared = offline(recorder, resolver=resolver)
    async with shared:
        with pytest.raises(UnsafeUrlError) as refused:
            await fetcher.fetch(url, destination)
    assert message in refused.value.message
    assert recorder.requests == []
    assert resolver.calls == []


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f.1", "127.1", "0x7f000001", "0x7F.0.0.1", "127.0.1", "0177.1", "0X7f.0X0.0.01"]
)
async def test_legacy_spellings_of_loopback_are_read_as_loopback(host: str, destination: Path) -> None:
    recorder = Recorder()
    resolver = FakeResolver()
    fetcher, shared = offline(recorder, resolver=resolver)
    async with shared:
        with pytest.raises(UnsafeUrlError) as refused:
            await fetcher.fetch(f"http://{host}/video.mp4", destination)
    assert f"the host {host.lower()} means 127." in refused.value.message
    assert "a loopback address" in refused.value.message
    assert recorder.requests == []
    assert resolver.calls == []


@pytest.mark.parametrize("host", ["167772161", "0xa.1", "0xa9.0xfe.0xa9.0xfe", "2852039166"])
async def test_legacy_spellings_of_private_addresses_are_refused(host: str, destination: Path) -> None:
    recorder = Recorder()
    fetcher, shared = offline(recorder, resolver=FakeResolver())
    async with shared:
        with pytest.raises(UnsafeUrlError, match=r"private address|link-local address"):
            await fetcher.fetch(f"http://{host}/", destination)
    assert recorder.requests == []


async def test_unspecified_and_multicast_stay_refused_whatever_the_allow_list(destination: Path) -> None:
    recorder = Recorder()
    resolver = FakeResolver({"any.test": ["0.0.0.0"]})
    fetcher, shared = offline(recorder, resolver=resolver, allow=("0.0.0.0/0", "::/0", "any.test"))
    async with shared:
        for url in ("http://0.0.0.0/", "http://[::]/", "http://239.1.2.3/", "http://any.test/"):
            with pytest.raises(UnsafeUrlError, match=r"unspecified|multicast"):
                await fetcher.fetch(url, destination)
    assert recorder.requests == []


async def test_an_unresolvable_name_is_a_clear_error(destination: Path) -> None:
    async def failing(host: str, port: int) -> list[IPAddress | str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    recorder = Recorder()
    fetcher, shared = offline(recorder, resolver=failing)
    async with shared:
        with pytest.raises(SourceUnavailableError, match=r"the host nowhere\.test could not be resolved"):
            await fetcher.fetch("http://nowhere.test/", destination)
        empty = SafeVideoFetcher(shared, resolver=FakeResolver({"empty.test": []}))
        with pytest.raises(SourceUnavailableError, match="has no address"):
            await empty.fetch("http://empty.test/", destination)
    assert recorder.requests == []


async def test_check_refuses_what_fetch_refuses_without_connecting() -> None:
    recorder = Recorder()
    resolver = FakeResolver({"evil.test": ["93.184.216.34", "10.0.0.1"], "cdn.test": ["93.184.216.34"]})
    fetcher, shared = offline(recorder, resolver=resolver)
    async with shared:
        for url, message in [
            ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
            ("http://evil.test/v.mp4", "resolves to 10.0.0.1, a private address"),
            ("file:///etc/passwd", "the scheme 'file'"),
            ("http://user:pass@cdn.test/", "carries credentials"),
        ]:
            with pytest.raises(UnsafeUrlError, match=re.escape(message)):
                await fetcher.check(url)
        await fetcher.check("https://cdn.test/v.mp4")  # fine, and still nothing is sent
        with pytest.raises(SourceUnavailableError, match="could not be resolved"):
            await SafeVideoFetcher(shared, resolver=_unresolvable).check("http://nowhere.test/")
    assert recorder.requests == []
    assert resolver.calls == [("evil.test", 80), ("cdn.test", 443)]


async def _unresolvable(host: str, port: int) -> list[IPAddress | str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


# -- the anti-rebinding technique, observed at the transport ---------------------------------


async def test_the_request_goes_to_the_judged_address_with_the_real_host_and_sni(destination: Path) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a rebinding DNS: public first, loopback next

    async def rebinding(host: str, port: int) -> list[IPAddress | str]:
        return list(next(answers))

    recorder = Recorder()
    fetcher, shared = offline(recorder, resolver=rebinding)
    async with shared:
        fetched = await fetcher.fetch("https://Video.Example:8443/a/b.mp4?x=1#frag", destination)
    (request,) = recorder.requests
    assert request.url.host == "93.184.216.34"  # not a fresh lookup: the second answer is never used
    assert request.url.port == 8443
    assert request.url.raw_path == b"/a/b.mp4?x=1"
    assert request.headers["host"] == "video.example:8443"
    assert request.extensions["sni_hostname"] == "video.example"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["accept-encoding"] == "identity"
    assert "cookie" not in request.headers
    assert "authorization" not in request.headers
    assert fetched.final_url == "https://video.example:8443/a/b.mp4?x=1#frag"
    assert contents(destination) == b"v"


async def test_ipv6_answers_are_pinned_with_brackets_and_mapped_ones_as_ipv4(destination: Path) -> None:
    recorder = Recorder()
    fetcher, shared = offline(
        recorder, resolver=FakeResolver({"six.test": ["2606:2800:220:1::1"], "mapped.test": ["::ffff:93.184.216.34"]})
    )
    async with shared:
        await fetcher.fetch("http://six.test/v.mp4", destination)
        await fetcher.fetch("http://mapped.test/v.mp4", destination)
    six, mapped = recorder.requests
    assert six.url.netloc == b"[2606:2800:220:1::1]"
    assert six.headers["host"] == "six.test"
    assert "sni_hostname" not in six.extensions  # plain http
    assert mapped.url.host == "93.184.216.34"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (answer(content_type="video/mp4", content_encoding="gzip"), "a gzip-encoded body"),
        (answer(body=b"", content_type="video/mp4"), "an empty body"),
        (answer(204, body=b""), "204 No Content"),
        (answer(206, content_type="video/mp4"), "206 Partial Content"),
        (answer(302, body=b""), "302 Found without a Location"),
        (answer(304, body=b""), "304 Not Modified"),
        (answer(content_type="application/json"), "application/json"),
        (answer(content_type="image/png"), "image/png"),
        (answer(content_type="application/vnd.apple.mpegurl"), "mpegurl"),
    ],
)
async def test_answers_that_are_no_video_are_refused(response: httpx.Response, message: str, destination: Path) -> None:
    fetcher, shared = offline(Recorder(lambda _: response), resolver=FakeResolver({"cdn.test": ["93.184.216.34"]}))
    async with shared:
        with pytest.raises(SourceUnavailableError) as refused:
            await fetcher.fetch("http://cdn.test/v", destination)
    assert message in refused.value.message
    assert gone(destination)


async def test_a_full_connection_pool_is_503_not_the_remotes_fault(destination: Path) -> None:
    def exhausted(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection available", request=request)

    fetcher, shared = offline(Recorder(exhausted), resolver=FakeResolver({"cdn.test": ["93.184.216.34"]}))
    async with shared:
        with pytest.raises(ServiceUnavailableError):
            await fetcher.fetch("http://cdn.test/v", destination)


def _tls_failure(request: httpx.Request) -> httpx.Response:
    try:
        raise ssl.SSLCertVerificationError("certificate verify failed: Hostname mismatch")
    except ssl.SSLError as error:
        raise httpx.ConnectError(str(error), request=request) from error


def _raises(exception: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        raise exception("boom", request=request)

    return respond


@pytest.mark.parametrize(
    ("respond", "message"),
    [
        (_raises(httpx.ConnectTimeout), "connecting to cdn.test timed out after 5 seconds"),
        (_raises(httpx.ConnectError), "could not connect to cdn.test"),
        (_tls_failure, "the TLS handshake with cdn.test failed"),
        (_raises(httpx.ReadTimeout), "cdn.test did not answer within 30 seconds"),
        (_raises(httpx.RemoteProtocolError), "the connection to cdn.test failed"),
    ],
)
async def test_transport_failures_are_clear_errors(
    respond: Callable[[httpx.Request], httpx.Response], message: str, destination: Path
) -> None:
    fetcher, shared = offline(Recorder(respond), resolver=FakeResolver({"cdn.test": ["93.184.216.34"]}))
    async with shared:
        with pytest.raises(SourceUnavailableError) as refused:
            await fetcher.fetch("https://cdn.test/v.mp4", destination)
    assert refused.value.message == message
    assert gone(destination)


async def test_every_address_is_tried_in_order_until_one_connects(destination: Path) -> None:
    def first_refuses(request: httpx.Request) -> httpx.Response:
        if request.url.host == "2606:2800:220:1::1":
            raise httpx.ConnectError("refused", request=request)
        return answer(body=b"ok", content_type="video/mp4")

    recorder = Recorder(first_refuses)
    fetcher, shared = offline(recorder, resolver=FakeResolver({"cdn.test": ["2606:2800:220:1::1", "93.184.216.34"]}))
    async with shared:
        fetched = await fetcher.fetch("http://cdn.test/v", destination)
    assert [request.url.host for request in recorder.requests] == ["2606:2800:220:1::1", "93.184.216.34"]
    assert fetched.size == 2


# -- against real servers on loopback ----------------------------------------------------------


async def test_a_loopback_url_outside_the_allow_list_never_connects(
    client: httpx.AsyncClient, loopback_trap: Trap, destination: Path
) -> None:
    fetcher = live(client)
    for url in (loopback_trap.url("/video.mp4"), f"http://0x7f.2:{loopback_trap.port}/video.mp4"):
        with pytest.raises(UnsafeUrlError, match=r"127\.0\.0\.2, a loopback address|127\.0\.0\.2 is a loopback"):
            await fetcher.fetch(url, destination)
    assert loopback_trap.settled_connections() == 0
    assert gone(destination)


async def test_the_trap_does_count_connections(loopback_trap: Trap) -> None:
    """The trap is a fair witness: a real connection to it is counted."""
    with socket.create_connection((loopback_trap.host, loopback_trap.port), timeout=5):
        pass
    assert loopback_trap.settled_connections() == 1


async def test_fetches_an_allow_listed_server(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    fetched = await live(client).fetch(server.url("/files/clip.mp4"), destination)
    assert contents(destination) == payload(100_000)
    assert fetched.path == destination
    assert fetched.size == 100_000
    assert fetched.content_type == "video/mp4"
    assert fetched.final_url == server.url("/files/clip.mp4")
    (request,) = server.requests
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    assert request.headers["user-agent"] == USER_AGENT
    assert server.settled_connections() == 1


async def test_legacy_spelling_of_an_allow_listed_address_reaches_it(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    fetched = await live(client).fetch(f"http://2130706433:{server.port}/bytes?size=10", destination)
    assert fetched.size == 10
    assert server.requests[0].headers["host"] == f"2130706433:{server.port}"


async def test_localhost_with_an_ipv4_only_allow_list(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    url = f"http://localhost:{server.port}/bytes?size=10"
    both = live(client, resolver=FakeResolver({"localhost": ["127.0.0.1", "::1"]}))
    with pytest.raises(UnsafeUrlError, match=r"resolves to ::1, a loopback address"):
        await both.fetch(url, destination)
    assert server.settled_connections() == 0
    ipv4_only = live(client, resolver=FakeResolver({"localhost": ["127.0.0.1"]}))
    fetched = await ipv4_only.fetch(url, destination)
    assert fetched.size == 10
    assert server.requests[0].headers["host"] == f"localhost:{server.port}"


async def test_an_allow_listed_host_name_may_resolve_to_private_addresses(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    fetcher = live(client, allow=("Media.Internal",), resolver=FakeResolver({"media.internal": ["127.0.0.1"]}))
    fetched = await fetcher.fetch(f"http://media.internal:{server.port}/bytes?size=5", destination)
    assert fetched.size == 5
    assert server.requests[0].headers["host"] == f"media.internal:{server.port}"


async def test_fetches_over_ipv6_loopback_when_allow_listed(client: httpx.AsyncClient, destination: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with media_server(host="::1") as server:
        fetcher = live(client, allow=("::1/128",))
        fetched = await fetcher.fetch(server.url("/bytes?size=7"), destination)
        assert fetched.size == 7
        assert server.requests[0].headers["host"] == f"[::1]:{server.port}"


@pytest.mark.parametrize("hops", [1, 3])
async def test_follows_up_to_max_redirects(
    hops: int, client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    target = server.url("/bytes?size=2048")
    fetched = await live(client).fetch(server.url(f"/redirect?hops={hops}&to=%2Fbytes%3Fsize%3D2048"), destination)
    assert fetched.final_url == target
    assert contents(destination) == payload(2048)
    assert len(server.requests) == hops + 1


@pytest.mark.parametrize("status", [301, 303, 307, 308])
async def test_every_redirect_status_is_followed(
    status: int, client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    fetched = await live(client).fetch(server.url(f"/redirect?hops=1&status={status}&to=%2Fbytes"), destination)
    assert fetched.size == 1024


async def test_one_redirect_too_many_is_refused(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    with pytest.raises(SourceUnavailableError, match="redirected more than 3 times"):
        await live(client).fetch(server.url("/redirect?hops=4&to=%2Fbytes"), destination)
    assert len(server.requests) == 4  # the fifth URL is never asked for
    assert gone(destination)


async def test_a_redirect_to_a_loopback_trap_is_refused_without_connecting(
    client: httpx.AsyncClient, server: MediaServer, loopback_trap: Trap, destination: Path
) -> None:
    to = httpx.QueryParams({"to": loopback_trap.url("/video.mp4")})
    with pytest.raises(UnsafeUrlError, match=r"the redirect is refused: the host 127\.0\.0\.2 is a loopback address"):
        await live(client).fetch(server.url(f"/redirect?hops=2&{to}"), destination)
    assert loopback_trap.settled_connections() == 0
    assert len(server.requests) == 2


async def test_a_redirect_to_a_name_that_resolves_inside_is_refused(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    with trap("127.0.0.3") as inner:
        to = httpx.QueryParams({"to": f"http://inner.test:{inner.port}/"})
        fetcher = live(client, resolver=FakeResolver({"inner.test": ["127.0.0.3"]}))
        with pytest.raises(UnsafeUrlError, match=r"resolves to 127\.0\.0\.3, a loopback address"):
            await fetcher.fetch(server.url(f"/redirect?hops=1&{to}"), destination)
        assert inner.settled_connections() == 0


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/v.mp4", "http://u:p@127.0.0.1/"])
async def test_a_redirect_to_another_scheme_or_credentials_is_refused(
    target: str, client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    to = httpx.QueryParams({"to": target})
    with pytest.raises(UnsafeUrlError, match="the redirect target"):
        await live(client).fetch(server.url(f"/redirect?hops=1&{to}"), destination)


async def test_no_cookie_or_credential_travels(server: MediaServer, destination: Path) -> None:
    async with httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT, "Authorization": "Bearer app-secret"},
        cookies={"session": "app-secret"},
        auth=("app", "secret"),
        trust_env=False,
    ) as shared:
        fetcher = live(shared)
        await fetcher.fetch(server.url("/redirect?hops=3&cookie=1&to=%2Fbytes"), destination)
        assert {cookie.name for cookie in shared.cookies.jar} == {"session"}  # the remote's were dropped
    assert len(server.requests) == 4
    for request in server.requests:
        assert "cookie" not in request.headers
        assert "authorization" not in request.headers


async def test_a_chunked_body_without_length(client: httpx.AsyncClient, server: MediaServer, destination: Path) -> None:
    fetched = await live(client).fetch(server.url("/chunked?size=300001&chunk=7777"), destination)
    assert contents(destination) == payload(300_001)
    assert fetched.size == 300_001


@pytest.mark.parametrize("route", ["/bytes", "/chunked"])
async def test_a_body_exactly_at_the_limit_is_fine(
    route: str, client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    fetched = await live(client, max_bytes=5000).fetch(server.url(f"{route}?size=5000&chunk=999"), destination)
    assert fetched.size == 5000


async def test_a_chunked_body_one_byte_over_the_limit_is_413_and_leaves_no_file(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    with pytest.raises(PayloadTooLargeError, match="larger than the limit of 5000 bytes") as refused:
        await live(client, max_bytes=5000).fetch(server.url("/chunked?size=5001&chunk=1000"), destination)
    assert refused.value.status_code == 413
    assert gone(destination)


async def test_a_length_one_byte_over_the_limit_is_413(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    write(destination, b"stale")
    with pytest.raises(PayloadTooLargeError, match="announces 5001 bytes; the limit is 5000 bytes"):
        await live(client, max_bytes=5000).fetch(server.url("/bytes?size=5001"), destination)
    assert gone(destination)


async def test_a_huge_announced_length_is_refused_without_reading_the_body(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    # /huge never sends a body: a fetcher that waited for one would end in a read timeout instead
    with pytest.raises(PayloadTooLargeError, match="announces 10737418240 bytes"):
        await live(client, max_bytes=1 << 20, read_timeout=5.0).fetch(server.url("/huge"), destination)
    assert gone(destination)


@pytest.mark.parametrize(("code", "phrase"), [(404, "404 Not Found"), (500, "500 Internal Server Error"), (403, "403")])
async def test_an_error_status_is_a_clear_422(
    code: int, phrase: str, client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    with pytest.raises(SourceUnavailableError) as refused:
        await live(client).fetch(server.url(f"/status/{code}"), destination)
    assert refused.value.message.startswith(f"the remote answered {phrase}")
    assert refused.value.status_code == 422
    assert gone(destination)


@pytest.mark.parametrize(
    ("route", "media_type"),
    [("/html", "text/html"), ("/bytes?type=application/json", "application/json"), ("/bytes?type=image/jpeg", "image")],
)
async def test_a_page_or_a_picture_is_not_a_video(
    route: str, media_type: str, client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    with pytest.raises(SourceUnavailableError, match=f"the remote sent {media_type}.*not a video"):
        await live(client).fetch(server.url(route), destination)
    assert gone(destination)


@pytest.mark.parametrize(
    "media_type", ["", "application/octet-stream", "binary/octet-stream", "application/mp4", "video/webm; codecs=vp9"]
)
async def test_video_like_or_missing_types_are_accepted(
    media_type: str, client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    fetched = await live(client).fetch(
        server.url("/bytes?size=3&" + str(httpx.QueryParams(type=media_type))), destination
    )
    assert fetched.size == 3
    assert fetched.content_type == (media_type or None)


async def test_a_stalled_body_is_a_read_timeout(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    fetcher = live(client, read_timeout=0.3)
    with pytest.raises(SourceUnavailableError, match=r"stopped sending for 0\.3 seconds"):
        await fetcher.fetch(server.url("/slow?size=64&interval=5"), destination)
    assert gone(destination)


async def test_a_server_that_never_answers_is_a_read_timeout(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    with pytest.raises(SourceUnavailableError, match=r"did not answer within 0\.3 seconds"):
        await live(client, read_timeout=0.3).fetch(server.url("/slow?delay=5&interval=0"), destination)


async def test_a_trickle_hits_the_total_deadline(
    client: httpx.AsyncClient, server: MediaServer, destination: Path
) -> None:
    fetcher = live(client, read_timeout=2.0, total_timeout=0.5)
    with pytest.raises(SourceUnavailableError, match=r"did not finish within 0\.5 seconds"):
        await fetcher.fetch(server.url("/slow?size=1000&interval=0.05"), destination)
    assert gone(destination)


async def test_a_closed_port_is_a_clear_error(client: httpx.AsyncClient, destination: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(SourceUnavailableError, match=r"could not connect to 127\.0\.0\.1"):
        await live(client).fetch(f"http://127.0.0.1:{port}/v.mp4", destination)


# -- the address policy on its own --------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "2002:808:808::1", "64:ff9b::808:808", "::ffff:8.8.8.8"],
)
def test_public_addresses(address: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.255.0.1",
        "169.254.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "0.1.2.3",
        "::a00:1",
        "100::1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) is not None


def test_allow_list_entries() -> None:
    policy = AddressPolicy.from_entries(["127.0.0.1/32", "10.0.0.0/8", "fd00::1", "Media.Internal."])
    assert policy.refusal("x.test", ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal("x.test", ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert policy.refusal("x.test", ipaddress.ip_address("10.9.8.7")) is None
    assert policy.refusal("x.test", ipaddress.ip_address("fd00::1")) is None
    assert policy.refusal("x.test", ipaddress.ip_address("fd00::2")) == "a private address"
    assert policy.refusal("x.test", ipaddress.ip_address("127.0.0.2")) == "a loopback address"
    assert policy.refusal("media.internal", ipaddress.ip_address("192.168.0.9")) is None
    assert policy.refusal("sub.media.internal", ipaddress.ip_address("192.168.0.9")) == "a private address"
    for bad in ["", "not a host!", "10.0.0.0/33", "*.example.com"]:
        with pytest.raises(ValueError, match="allow-list entry"):
            AddressPolicy.from_entries([bad])
