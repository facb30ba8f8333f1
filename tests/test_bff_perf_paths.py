"""The BFF's fast paths keep every guarantee of the slow ones.

- :class:`~patterns.bff.proxy.UpstreamPool` (the lean upstream client) against scripted
  servers on loopback: keep-alive reuse, chunked and close-delimited bodies, a partly read
  answer never reused, header injection refused, compressed answers refused, 1xx skipped,
  broken and silent upstreams, the connection bound, and TLS verified like httpx does;
  and fail-closed on what a hostile or broken upstream can send: bytes after a complete
  answer, any non-identity content-encoding, trailers, a reset or unprovable end of a
  close-delimited body, an oversized head, a 101 switch of protocols.
- A streamed call whose client leaves, before the first chunk or in the middle, is settled
  exactly once: its budget hold released, its usage and audit event recorded, its upstream
  connection given back (a real disconnect over a real socket).
- An environment proxy sends the BFF back to httpx, which honours it.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.requests import ClientDisconnect

from patterns.bff import BffSettings, UserDirectory, bff_of, create_app
from patterns.bff.app import _upstream_for
from patterns.bff.client import BffClient, cookie_from
from patterns.bff.proxy import HttpxUpstream, UpstreamPool
from patterns.keys import demo_key
from patterns.serving import BackgroundServer
from patterns.upstream import RateLimits, UpstreamSettings, controls_of
from patterns.upstream import create_app as create_upstream

MODEL = "claude-haiku-4-5"
PASSWORD = "correct horse battery staple"
USER_KEY = demo_key("bff-perf")
HEADERS = {"content-type": "application/json", "x-api-key": "DEMO-not-a-key"}
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"

Script = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


class Scripted:
    """A loopback server that reads one request at a time and answers with ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.script(request, writer)
                await writer.drain()
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


def answer(*parts: bytes, close: bool = False, pause: float = 0.0) -> Script:
    async def script(request: bytes, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        if close:
            writer.close()

    return script


async def call(pool: UpstreamPool, body: bytes = b"{}") -> tuple[int, bytes]:
    response = await pool.post("/v1/messages", body, HEADERS)
    try:
        return response.status_code, await response.aread()
    finally:
        await response.aclose()


# -- the lean upstream client --------------------------------------------------------------


def test_answers_come_back_on_one_reused_connection() -> None:
    async def main() -> None:
        scripted = Scripted(answer(OK))
        async with scripted as url:
            pool = UpstreamPool(url)
            assert await call(pool, b'{"a":1}') == (200, b"{}")
            assert await call(pool) == (200, b"{}")
            await pool.aclose()
        assert scripted.connections == 1
        first = scripted.requests[0]
        assert first.startswith(b"POST /v1/messages HTTP/1.1\r\n")
        assert b"\r\ncontent-length: 7\r\n" in first
        assert b"\r\nhost: 127.0.0.1:" in first
        assert first.endswith(b'\r\n\r\n{"a":1}')

    asyncio.run(main())


def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it"

    async def main() -> None:
        scripted = Scripted(answer(chunked))
        async with scripted as url:
            pool = UpstreamPool(url)
            assert await call(pool) == (200, b"abcde")
            assert await call(pool) == (200, b"abcde")
            assert scripted.connections == 1
        scripted = Scripted(answer(until_close, close=True))
        async with scripted as url:
            pool = UpstreamPool(url)
            assert await call(pool) == (200, b"all of it")
            assert await call(pool) == (200, b"all of it")
            assert scripted.connections == 2  # a body ended by closing cannot be followed

    asyncio.run(main())


def test_an_answer_left_unread_never_goes_back_to_the_pool() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345"

    async def main() -> None:
        scripted = Scripted(answer(head, b"67890", pause=0.05))
        async with scripted as url:
            pool = UpstreamPool(url)
            response = await pool.post("/v1/messages", b"{}", HEADERS)
            await response.aclose()  # five bytes of the body are still on their way
            assert await call(pool) == (200, b"1234567890")
            assert scripted.connections == 2

    asyncio.run(main())


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "DEMO\r\nx-injected: yes"},
        {"x-api-key": "DEMO\nx-injected: yes"},
        {"x-api-key": "DEMO\x00"},
        {"bad header": "value"},
        {"x-api-key": "DEMO-é"},
        {"anthropic-version": "2023-06-01\n"},  # "$" alone would let a trailing LF through
        {"x-api-key\n": "DEMO"},
    ],
)
def test_a_header_that_could_split_the_request_is_refused(headers: dict[str, str]) -> None:
    async def main() -> None:
        scripted = Scripted(answer(OK))
        async with scripted as url:
            pool = UpstreamPool(url)
            with pytest.raises(ValueError, match="plain ASCII") as refused:
                await pool.post("/v1/messages", b"{}", headers)
            assert "DEMO" not in str(refused.value)  # the value is never echoed
            assert await call(pool) == (200, b"{}")  # and the pool is still whole
        assert scripted.requests == [scripted.requests[0]]
        assert b"injected" not in scripted.requests[0]

    asyncio.run(main())


def test_a_compressed_answer_is_refused_rather_than_passed_on_undecoded() -> None:
    gzip = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 2\r\n\r\n\x1f\x8b"

    async def main() -> None:
        async with Scripted(answer(gzip)) as url:
            pool = UpstreamPool(url, max_connections=1)
            with pytest.raises(ConnectionError, match="content-encoding"):
                await pool.post("/v1/messages", b"{}", HEADERS)
            with pytest.raises(ConnectionError):  # not a TimeoutError: the slot came back
                await asyncio.wait_for(pool.post("/v1/messages", b"{}", HEADERS), 5)

    asyncio.run(main())


def test_informational_answers_are_skipped() -> None:
    hints = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"

    async def main() -> None:
        async with Scripted(answer(hints, OK)) as url:
            pool = UpstreamPool(url)
            response = await pool.post("/v1/messages", b"{}", HEADERS)
            assert response.status_code == 200
            assert "link" not in response.headers
            assert await response.aread() == b"{}"
            await response.aclose()

    asyncio.run(main())


def test_broken_and_silent_upstreams_raise_and_free_their_slot() -> None:
    cut = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part"

    async def silent(request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def main() -> None:
        async with Scripted(answer(cut, close=True)) as url:
            pool = UpstreamPool(url, max_connections=1)
            response = await pool.post("/v1/messages", b"{}", HEADERS)
            with pytest.raises(ConnectionError, match="mid-answer"):
                await response.aread()
            await response.aclose()
        async with Scripted(answer(b"NOT HTTP AT ALL\r\n\r\n")) as url:
            pool = UpstreamPool(url, max_connections=1)
            with pytest.raises(ConnectionError, match="malformed"):
                await pool.post("/v1/messages", b"{}", HEADERS)
        async with Scripted(silent) as url:
            pool = UpstreamPool(url, max_connections=1, read_timeout=0.2)
            with pytest.raises(TimeoutError):
                await pool.post("/v1/messages", b"{}", HEADERS)
            with pytest.raises(TimeoutError):  # the slot was freed: this one waits and times out
                await pool.post("/v1/messages", b"{}", HEADERS)

    asyncio.run(main())


def test_the_pool_holds_at_most_max_connections() -> None:
    async def main() -> None:
        scripted = Scripted(answer(OK))
        async with scripted as url:
            pool = UpstreamPool(url, max_connections=1)
            first = await pool.post("/v1/messages", b"{}", HEADERS)
            second = asyncio.ensure_future(call(pool))
            await asyncio.sleep(0.2)
            assert not second.done()  # waiting for the only connection
            await first.aread()
            await first.aclose()
            assert await asyncio.wait_for(second, 5) == (200, b"{}")
            assert scripted.connections == 1

    asyncio.run(main())


# -- review findings: a desynced, oversized or odd upstream never reaches a user ---------------


def first_then(first: Script, rest: Script) -> Script:
    """``first`` answers the first request the server sees, ``rest`` every later one."""
    seen: list[bytes] = []

    async def script(request: bytes, writer: asyncio.StreamWriter) -> None:
        seen.append(request)
        await (first if len(seen) == 1 else rest)(request, writer)

    return script


HELLO = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"


@pytest.mark.parametrize(
    "extra",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nINJECTED",  # a whole second answer
        b'HTTP/1.1 200 OK\r\ncontent-length: 43\r\n\r\n{"evil":1}',  # half of one
        b"INJECTED",  # bytes that are no answer at all
    ],
)
def test_bytes_after_a_complete_answer_in_the_same_read_fail_it_and_are_never_reused(
    extra: bytes,
) -> None:
    async def main() -> None:
        scripted = Scripted(first_then(answer(OK + extra), answer(HELLO)))
        async with scripted as url:
            pool = UpstreamPool(url, max_connections=1)
            with pytest.raises(ConnectionError, match=r"after its answer|second answer"):
                await asyncio.wait_for(pool.post("/v1/messages", b"{}", HEADERS), 5)
            # The next user gets their own answer on a new connection, at once (slot freed).
            assert await asyncio.wait_for(call(pool), 5) == (200, b"hello")
            assert scripted.connections == 2

    asyncio.run(main())


def test_bytes_after_an_answer_handed_out_close_its_connection_for_good() -> None:
    second = b'HTTP/1.1 200 OK\r\ncontent-length: 43\r\n\r\n{"evil":1}'

    async def main() -> None:
        scripted = Scripted(first_then(answer(OK, second, pause=0.05), answer(HELLO)))
        async with scripted as url:
            pool = UpstreamPool(url, max_connections=1)
            assert await call(pool) == (200, b"{}")  # user A: exactly their answer
            await asyncio.sleep(0.3)  # the stray bytes reach the idle connection
            assert await asyncio.wait_for(call(pool), 5) == (200, b"hello")  # user B: theirs
            assert scripted.connections == 2

    asyncio.run(main())


@pytest.mark.parametrize(
    "codings",
    [
        b"content-encoding: gzip\r\ncontent-encoding: identity\r\n",
        b"content-encoding: identity\r\ncontent-encoding: br\r\n",
        b"content-encoding: identity, gzip\r\n",
    ],
)
def test_every_content_encoding_must_be_identity(codings: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + codings + b"content-length: 2\r\n\r\n"

    async def main() -> None:
        scripted = Scripted(first_then(answer(head + b"\x1f\x8b"), answer(OK)))
        async with scripted as url:
            pool = UpstreamPool(url, max_connections=1)
            with pytest.raises(ConnectionError, match="content-encoding"):
                await pool.post("/v1/messages", b"{}", HEADERS)
            assert await asyncio.wait_for(call(pool), 5) == (200, b"{}")

    asyncio.run(main())


def test_identity_named_twice_is_still_identity() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-encoding: identity\r\ncontent-encoding: Identity\r\n"

    async def main() -> None:
        async with Scripted(answer(head + b"content-length: 2\r\n\r\n{}")) as url:
            assert await call(UpstreamPool(url)) == (200, b"{}")

    asyncio.run(main())


def test_trailers_never_merge_into_the_answers_headers() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
        b"x-trailer: 1\r\ncontent-encoding: gzip\r\n\r\n"
    )

    async def main() -> None:
        scripted = Scripted(answer(chunked))
        async with scripted as url:
            pool = UpstreamPool(url)
            response = await pool.post("/v1/messages", b"{}", HEADERS)
            assert await response.aread() == b"ok"
            await response.aclose()
            assert dict(response.headers) == {"transfer-encoding": "chunked"}
            assert await call(pool) == (200, b"ok")
            assert scripted.connections == 1  # trailers are part of a well-formed answer

    asyncio.run(main())


def reset_after(*parts: bytes) -> Script:
    """Write ``parts``, then reset the connection (RST, not a clean FIN)."""

    async def script(request: bytes, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.05)
        raw = writer.transport.get_extra_info("socket")
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    return script


def test_a_close_delimited_body_cut_by_a_reset_is_refused() -> None:
    cut = b'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{"usage":{"input_tok'

    async def main() -> None:
        async with Scripted(reset_after(cut)) as url:
            pool = UpstreamPool(url, max_connections=1)
            response = await pool.post("/v1/messages", b"{}", HEADERS)
            with pytest.raises(ConnectionError, match="mid-answer"):
                await asyncio.wait_for(response.aread(), 5)
            await response.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    "head",
    [
        b"".join(b"x-h%d: %s\r\n" % (i, b"a" * 1000) for i in range(2000)),  # 2 MB, many
        b"x-big: " + b"a" * (1 << 20) + b"\r\n",  # one header of 1 MiB
        b"".join(b"x-h%d: 1\r\n" % i for i in range(100)),  # 101 with content-length
    ],
    ids=["many-large", "one-huge", "too-many"],
)
def test_an_oversized_head_is_refused_and_frees_its_slot(head: bytes) -> None:
    big = b"HTTP/1.1 200 OK\r\n" + head + b"content-length: 2\r\n\r\n{}"

    async def main() -> None:
        async with Scripted(first_then(answer(big), answer(OK))) as url:
            pool = UpstreamPool(url, max_connections=1)
            with pytest.raises(ConnectionError, match="too large a header"):
                await asyncio.wait_for(pool.post("/v1/messages", b"{}", HEADERS), 5)
            assert await asyncio.wait_for(call(pool), 5) == (200, b"{}")

    asyncio.run(main())


def test_a_header_or_trailer_that_never_ends_is_refused_once_over_the_limit() -> None:
    """llhttp holds a header line whole until it ends: an upstream that never ends one must
    not make the BFF buffer it until the read timeout."""
    endless = b"a" * (1 << 20)  # and then nothing: no CRLF, the connection stays open
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"

    async def main() -> None:
        head = b"HTTP/1.1 200 OK\r\nx-big: " + endless
        async with Scripted(first_then(answer(head), answer(OK))) as url:
            pool = UpstreamPool(url, max_connections=1)
            with pytest.raises(ConnectionError, match="too large a header"):
                await asyncio.wait_for(pool.post("/v1/messages", b"{}", HEADERS), 5)
            assert await asyncio.wait_for(call(pool), 5) == (200, b"{}")
        trailer = b"x-trailer: " + endless
        async with Scripted(first_then(answer(chunked, trailer), answer(OK))) as url:
            pool = UpstreamPool(url, max_connections=1)
            response = await pool.post("/v1/messages", b"{}", HEADERS)
            with pytest.raises(ConnectionError, match="too large a header"):
                await asyncio.wait_for(response.aread(), 5)
            await response.aclose()
            assert await asyncio.wait_for(call(pool), 5) == (200, b"{}")

    asyncio.run(main())


def test_a_long_chunked_body_whose_chunks_straddle_reads_is_accepted() -> None:
    """Body bytes never count towards the head's limit, however the reads fall."""
    chunk = b"1000\r\n" + b"b" * 4096 + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    parts = [head + chunk * 50 + b"10", b"00\r\n" + b"c" * 4096, b"\r\n" + chunk * 50, b"0\r\n\r\n"]

    async def main() -> None:
        scripted = Scripted(answer(*parts, pause=0.02))
        async with scripted as url:
            pool = UpstreamPool(url)
            status, body = await call(pool)
            assert (status, len(body)) == (200, 101 * 4096)
            assert await call(pool) == (200, body)
            assert scripted.connections == 1

    asyncio.run(main())


def test_a_head_at_the_limits_is_accepted() -> None:
    headers = b"".join(b"x-h%d: 1\r\n" % i for i in range(98))  # OK adds two: 100

    async def main() -> None:
        async with Scripted(answer(b"HTTP/1.1 200 OK\r\n" + headers + OK[17:])) as url:
            assert await call(UpstreamPool(url)) == (200, b"{}")

    asyncio.run(main())


def test_a_switch_of_protocols_is_refused_and_frees_its_slot() -> None:
    upgrade = (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    )

    async def main() -> None:
        async with Scripted(first_then(answer(upgrade), answer(OK))) as url:
            pool = UpstreamPool(url, max_connections=1)
            with pytest.raises(ConnectionError, match="switched protocols"):
                await asyncio.wait_for(pool.post("/v1/messages", b"{}", HEADERS), 5)
            assert await asyncio.wait_for(call(pool), 5) == (200, b"{}")

    asyncio.run(main())


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "upstream.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_is_verified_like_httpx_does(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def main() -> None:
        server = await asyncio.start_server(
            Scripted(answer(OK))._serve, "127.0.0.1", 0, ssl=server_context
        )
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            untrusted = UpstreamPool(url)  # httpx's CA bundle: a self-signed cert is refused
            with pytest.raises(ssl.SSLCertVerificationError):
                await untrusted.post("/v1/messages", b"{}", HEADERS)
            trusting = ssl.create_default_context(cafile=str(cert))
            assert await call(UpstreamPool(url, ssl_context=trusting)) == (200, b"{}")
        finally:
            server.close()

    asyncio.run(main())


def test_a_close_delimited_body_is_refused_over_tls(tmp_path: Path) -> None:
    """asyncio calls eof_received for a bare FIN as for a TLS close_notify, so a truncated
    body (an attacker's injected FIN, or a crash) would look whole: such answers are refused
    up front, whether the server then closes cleanly or not."""
    cert, key = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    head = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it"

    async def truncated(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()  # TCP FIN, but no TLS close_notify

    async def main() -> None:
        trusting = ssl.create_default_context(cafile=str(cert))
        for script in (answer(head, close=True), truncated):
            server = await asyncio.start_server(
                Scripted(first_then(script, answer(OK)))._serve,
                "127.0.0.1",
                0,
                ssl=server_context,
            )
            url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            try:
                pool = UpstreamPool(url, ssl_context=trusting, max_connections=1)
                with pytest.raises(ConnectionError, match="without a length over TLS"):
                    await asyncio.wait_for(pool.post("/v1/messages", b"{}", HEADERS), 5)
                assert await asyncio.wait_for(call(pool), 5) == (200, b"{}")
            finally:
                server.close()

    asyncio.run(main())


def test_an_environment_proxy_sends_the_bff_back_to_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = BffSettings(upstream_url="https://api.anthropic.com")
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(_upstream_for(settings, None), UpstreamPool)
    monkeypatch.setenv("HTTPS_PROXY", "http://egress.internal:3128")
    assert isinstance(_upstream_for(settings, None), HttpxUpstream)
    monkeypatch.setenv("NO_PROXY", "api.anthropic.com")
    assert isinstance(_upstream_for(settings, None), UpstreamPool)
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    assert isinstance(_upstream_for(settings, mock), HttpxUpstream)


# -- streams whose client leaves -----------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[BackgroundServer]:
    settings = UpstreamSettings(
        api_keys=(USER_KEY,), limits=RateLimits(100_000, 10**7, 10**7), stream_delay=0.05
    )
    with BackgroundServer(create_upstream(settings)) as server:
        yield server


@pytest.fixture
def bff(upstream: BackgroundServer) -> Iterator[tuple[BffClient, Any]]:
    users = UserDirectory()
    users.add("alice", PASSWORD)
    settings = BffSettings(
        upstream_url=upstream.url, token_budget=100_000, max_connections=1, audit_size=100
    )
    app = create_app(settings, users=users)
    with BackgroundServer(app) as server:
        client = BffClient(server.url).login("alice", PASSWORD)
        client.store_key(USER_KEY)
        yield client, app


def _raw_request(client: BffClient, body: bytes) -> bytes:
    headers = {**client.headers(), "content-type": "application/json"}
    host = client.base_url.split("//", 1)[1]
    lines = ["POST /claude/messages HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _settled(app: Any, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = bff_of(app).audit.events("message")
        if len(events) >= count:
            return list(events)
        time.sleep(0.02)
    raise AssertionError("the abandoned stream was never settled")


def _nothing_held(app: Any) -> bool:
    """True when no tokens are held: the whole rest of the budget can still be reserved."""
    store = bff_of(app).stores.usage

    async def probe() -> bool:
        used = (await store.get("alice")).total_tokens
        free = 100_000 - used
        if not await store.reserve("alice", free, 100_000):
            return False
        await store.release("alice", free)
        return True

    return asyncio.run(probe())


@pytest.mark.parametrize("leave", ["before the first chunk", "after the first chunk"])
def test_a_stream_whose_client_leaves_is_settled_once(
    bff: tuple[BffClient, Any], upstream: BackgroundServer, leave: str
) -> None:
    client, app = bff
    body = b'{"model":"%s","max_tokens":500,"stream":true,' % MODEL.encode()
    body += b'"messages":[{"role":"user","content":"Hello"}]}'
    if leave == "before the first chunk":
        # The stand-in holds the answer until the client has gone: the BFF gets the upstream's
        # headers only after the disconnect, so Starlette never starts the body generator.
        controls_of(upstream.app).faults.stall_next(0.6)
    with socket.create_connection(("127.0.0.1", int(client.base_url.rsplit(":", 1)[1]))) as raw:
        raw.sendall(_raw_request(client, body))
        if leave == "after the first chunk":
            assert raw.recv(65536).startswith(b"HTTP/1.1 200")
        else:
            time.sleep(0.2)
    events = _settled(app, 1)
    time.sleep(0.3)  # nothing settles twice
    assert len(bff_of(app).audit.events("message")) == 1
    assert events[0]["stream"] is True
    assert events[0]["output_tokens"] >= 500  # left early: charged its max_tokens
    assert _nothing_held(app)
    # The only upstream connection (max_connections=1) is free again: the next call works.
    sdk = client.sdk(timeout=10)
    reply = sdk.messages.create(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.content
    assert _nothing_held(app)


def test_a_stream_read_to_the_end_is_settled_once_with_its_real_usage(
    bff: tuple[BffClient, Any],
) -> None:
    client, app = bff
    sdk = client.sdk(timeout=10)
    with sdk.messages.stream(
        model=MODEL, max_tokens=500, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        final = stream.get_final_message()
    events = _settled(app, 1)
    assert len(events) == 1
    assert events[0]["output_tokens"] == final.usage.output_tokens < 500
    assert _nothing_held(app)


def test_a_stream_the_server_cannot_even_start_is_settled(upstream: BackgroundServer) -> None:
    """A server speaking ASGI 2.4 raises OSError from ``send`` once the client is gone, so
    Starlette gives up on the response before the body generator ever runs: a ``finally``
    in the generator alone would leak the budget hold and the upstream connection."""
    users = UserDirectory()
    users.add("alice", PASSWORD)
    settings = BffSettings(
        upstream_url=upstream.url, token_budget=100_000, max_connections=1, audit_size=100
    )
    app = create_app(settings, users=users)
    origin = "http://bff.test"
    body = b'{"model":"%s","max_tokens":500,"stream":true,' % MODEL.encode()
    body += b'"messages":[{"role":"user","content":"Hello"}]}'

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=origin) as http:
                login = await http.post(
                    "/auth/login",
                    json={"username": "alice", "password": PASSWORD},
                    headers={"origin": origin},
                )
                session = cookie_from(login)
                assert session
                headers = {
                    "origin": origin,
                    "cookie": f"__Host-session={session}",
                    "x-csrf-token": login.json()["csrf_token"],
                }
                stored = await http.put(
                    "/keys/anthropic", json={"api_key": USER_KEY.reveal()}, headers=headers
                )
                assert stored.status_code == 204
                sent: list[str] = []

                async def receive() -> dict[str, Any]:
                    if not sent:
                        sent.append("body")
                        return {"type": "http.request", "body": body, "more_body": False}
                    await asyncio.sleep(3600)
                    raise AssertionError("unreachable")

                async def gone(message: MutableMapping[str, Any]) -> None:
                    sent.append(message["type"])
                    raise OSError("the client has gone")

                scope = {
                    "type": "http",
                    "asgi": {"version": "3.0", "spec_version": "2.4"},
                    "http_version": "1.1",
                    "method": "POST",
                    "scheme": "http",
                    "path": "/claude/messages",
                    "raw_path": b"/claude/messages",
                    "query_string": b"",
                    "root_path": "",
                    "server": ("bff.test", 80),
                    "client": ("127.0.0.1", 50000),
                    "headers": [
                        (b"host", b"bff.test"),
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *((k.encode(), v.encode()) for k, v in headers.items()),
                    ],
                }
                with pytest.raises(ClientDisconnect):
                    await app(scope, receive, gone)
                assert "http.response.start" in sent
                events = bff_of(app).audit.events("message")
                assert len(events) == 1
                assert events[0]["output_tokens"] >= 500
                store = bff_of(app).stores.usage
                used = (await store.get("alice")).total_tokens
                assert await store.reserve("alice", 100_000 - used, 100_000)  # nothing held
                await store.release("alice", 100_000 - used)
                again = await asyncio.wait_for(  # the only upstream connection is free
                    http.post(
                        "/claude/messages",
                        json={
                            "model": MODEL,
                            "max_tokens": 5,
                            "messages": [{"role": "user", "content": "Hi"}],
                        },
                        headers=headers,
                    ),
                    10,
                )
                assert again.status_code == 200

    asyncio.run(main())


# -- the messages route served ahead of FastAPI's router -----------------------------------


def test_the_fast_route_keeps_the_envelope_and_every_security_header(
    bff: tuple[BffClient, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = bff
    refused = client.request("POST", "/claude/messages", content=b"[]")
    assert refused.status_code == 400
    assert refused.json()["type"] == "error"
    assert refused.headers["cache-control"] == "no-store"
    assert refused.headers["x-frame-options"] == "DENY"
    assert refused.headers["request-id"] == refused.json()["request_id"]
    oversize = client.request("POST", "/claude/messages", content=b"x" * (300 * 1024))
    assert oversize.status_code == 413
    assert oversize.json()["error"]["type"] == "request_too_large"
    assert client.request("GET", "/claude/messages").status_code == 405  # FastAPI's routing

    async def broken(request: Any) -> Any:
        raise RuntimeError("a bug with DEMO-secret-detail in its message")

    monkeypatch.setattr("patterns.bff.messages.handle", broken)
    crashed = client.request("POST", "/claude/messages", json={})
    assert crashed.status_code == 500
    assert crashed.json()["error"] == {
        "type": "api_error",
        "message": "internal error; nothing was sent",
    }
    assert "DEMO-secret-detail" not in crashed.text
    names = [name for name, _ in crashed.headers.multi_items()]
    assert names.count("x-frame-options") == 1  # sent once, outside the header layer
    assert names.count("content-security-policy") == 1
    assert crashed.headers["cache-control"] == "no-store"
