"""The lean upstream client: HTTP/1.1 keep-alive on asyncio, answers parsed by httptools.

httpx.AsyncClient costs about 1.4 ms of CPU per request on the benchmark machine (URL
merging, header models, the cookie jar, anyio cancel scopes, h11's pure-Python parser);
the BFF needs none of it for one fixed origin. This pool writes the request in one call and
parses the answer with httptools (llhttp, the parser uvicorn already runs for every request
the BFF receives). Scope, kept deliberately small: POST, HTTP/1.1, identity encoding, TLS
with the same CA bundle and checks as httpx, no redirects, no cookies, no proxies (the app
falls back to httpx when an environment proxy applies), never a retry.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Final, cast
from urllib.parse import urlsplit

import httptools
import httpx

__all__ = ["PooledAnswer", "UpstreamPool"]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # used with fullmatch: no trailing "\n"
_VALUE = re.compile(r"[\x20-\x7e]*")  # printable ASCII: no CR, LF or NUL can split a header
_HIGH_WATER: Final = 1 << 20  # pause reading when this much body waits for the client
_MAX_HEADER_BYTES: Final = 64 * 1024  # an answer's head, all of it: the API sends about 1 KiB
_MAX_HEADERS: Final = 100


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the exchange has already failed."""


class _Exchange:
    """One answer as it arrives: status, headers, body chunks, and how it ended."""

    __slots__ = (
        "buffered",
        "chunks",
        "complete",
        "error",
        "handed_out",
        "head",
        "headers",
        "status",
        "until_close",
        "waiter",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] = loop.create_future()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.until_close = False
        self.error: Exception | None = None
        self.handed_out = False  # a PooledAnswer holds it: its whole answer can be read
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def fail(self, error: Exception) -> None:
        """Fail closed: even a complete answer not yet handed out (its connection desynced)."""
        if self.error is not None or (self.complete and self.handed_out):
            return
        self.error = error
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: no "never retrieved" warning if nobody waits
        self.wake()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; an exchange at a time, fed by the parser's callbacks."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.closed = False
        self.keep_alive = False
        self.last_used = 0.0
        self._paused = False
        self._done = False  # the answer ended: any further byte desyncs the connection
        self._in_head = True  # header callbacks after the head are trailers: ignored
        self._head_bytes = 0
        self._head_count = 0
        # llhttp buffers a header (or trailer) line whole before on_header: bound what it holds
        self._in_fields = True  # between a message or last-chunk start and its end of fields
        self._fields_epoch = 0  # bumped each time a field section ends
        self._unparsed_fields = 0  # bytes fed wholly inside one unfinished field section
        self._eof = False  # a clean end (a FIN); over TLS asyncio cannot tell a close_notify

    def start(self) -> _Exchange:
        self.exchange = _Exchange(self._loop)
        self._done, self._in_head, self._in_fields = False, True, True
        self._head_bytes = self._head_count = self._unparsed_fields = 0
        return self.exchange

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def resume(self) -> None:
        exchange = self.exchange
        if self._paused and exchange is not None and exchange.buffered < _HIGH_WATER // 2:
            self._paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None or self._done:  # bytes nobody asked for: never reuse
            self._refuse("the upstream sent bytes after its answer", stop=False)
            return
        inside, epoch = self._in_fields, self._fields_epoch
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # a 101: not a subclass of HttpParserError
            self._refuse("the upstream switched protocols", stop=False)
            return
        except (_Refused, httptools.HttpParserError):  # a callback's refusal keeps its reason
            self._refuse("the upstream sent a malformed HTTP response", stop=False)
            return
        if self._in_fields and inside and epoch == self._fields_epoch and not self._done:
            self._unparsed_fields += len(data)  # all of it went into one unfinished section
            if self._unparsed_fields > _MAX_HEADER_BYTES:
                self._refuse("the upstream sent too large a header", stop=False)

    def eof_received(self) -> bool | None:
        self._eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange = self.exchange
        if exchange is None or exchange.complete:
            return
        clean = exc is None and self._eof
        if clean and exchange.head.done() and exchange.until_close and exchange.error is None:
            exchange.complete = True  # a body delimited by the (clean) end of the connection
            exchange.wake()
        else:
            exchange.fail(ConnectionError("the upstream closed the connection mid-answer"))

    def _refuse(self, reason: str, *, stop: bool = True) -> None:
        """Fail the exchange, close, never reuse; ``stop`` raises out of the parser."""
        if self.exchange is not None:
            self.exchange.fail(ConnectionError(reason))
        self.close()
        if stop:
            raise _Refused(reason)

    def _fields_start(self) -> None:
        self._in_fields = True
        self._unparsed_fields = 0

    def _fields_end(self) -> None:
        if self._in_fields:
            self._in_fields = False
            self._fields_epoch += 1

    # -- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._done:
            self._refuse("the upstream sent a second answer")
        self._in_head = True
        self._fields_start()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._done:
            self._refuse("the upstream sent bytes after its answer")
        self._head_bytes += len(name) + len(value) + 4
        self._head_count += 1
        if self._head_bytes > _MAX_HEADER_BYTES or self._head_count > _MAX_HEADERS:
            self._refuse("the upstream sent too large a header")
        if self._in_head and self.exchange is not None:
            self.exchange.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        self._in_head = False
        self._fields_end()
        exchange.status = self._parser.get_status_code()
        if exchange.status < 200:  # 103 Early Hints and the like: wait for the real answer
            return
        names = {name for name, _ in exchange.headers}
        chunked = any(n == b"transfer-encoding" and b"chunked" in v for n, v in exchange.headers)
        exchange.until_close = b"content-length" not in names and not chunked
        self.keep_alive = self._parser.should_keep_alive() and not exchange.until_close
        if not exchange.head.done():
            exchange.head.set_result(None)

    def on_chunk_header(self) -> None:
        self._fields_start()  # the last chunk's trailers may follow: until its body or end

    def on_chunk_complete(self) -> None:
        self._fields_end()

    def on_body(self, body: bytes) -> None:
        if self._done:
            self._refuse("the upstream sent bytes after its answer")
        self._fields_end()
        exchange = self.exchange
        assert exchange is not None
        exchange.chunks.append(bytes(body))
        exchange.buffered += len(body)
        if exchange.buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        exchange.wake()

    def on_message_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        if exchange.status < 200:
            exchange.headers = []
            return
        self._done = True
        exchange.complete = True
        exchange.wake()


class PooledAnswer:
    """An upstream answer whose body is read on demand; :meth:`aclose` returns the
    connection to the pool only when the answer was read to its end."""

    def __init__(self, pool: UpstreamPool, connection: _Connection, exchange: _Exchange):
        self._pool = pool
        self._connection = connection
        self._exchange = exchange
        self._released = False
        exchange.handed_out = True
        self.status_code = exchange.status
        headers: dict[str, str] = {}
        for name, value in exchange.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.headers: Mapping[str, str] = headers

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        exchange, connection = self._exchange, self._connection
        while True:
            while exchange.chunks:
                chunk = exchange.chunks.popleft()
                exchange.buffered -= len(chunk)
                connection.resume()
                yield chunk
            if exchange.error is not None:
                raise exchange.error
            if exchange.complete:
                return
            exchange.waiter = asyncio.get_running_loop().create_future()
            async with asyncio.timeout(self._pool.read_timeout):
                await exchange.waiter

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def aclose(self) -> None:
        if self._released:
            return
        self._released = True
        exchange = self._exchange
        reuse = exchange.complete and not exchange.chunks and exchange.error is None
        self._pool.release(self._connection, reuse=reuse)


class UpstreamPool:
    """Keep-alive HTTP/1.1 connections to one origin (``http://`` or ``https://``)."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 64,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        keepalive_expiry: float = 4.0,  # under uvicorn's 5 s idle close: never reuse a closing one
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("the upstream URL must be http(s)://host[:port]")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self._host_header = parts.netloc.rsplit("@", 1)[-1]
        self._ssl = None
        if parts.scheme == "https":
            self._ssl = ssl_context or httpx.create_ssl_context()
        self.read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> PooledAnswer:
        request = self._request_bytes(path, body, headers)
        await self._slots.acquire()
        connection: _Connection | None = None
        try:
            connection = self._reuse() or await self._connect()
            exchange = connection.start()
            assert connection.transport is not None
            connection.transport.write(request)
            async with asyncio.timeout(self.read_timeout):
                await exchange.head
            if exchange.error is not None:  # failed after its head: e.g. a second answer
                raise exchange.error
            if exchange.until_close and self._ssl is not None:
                # asyncio reports a bare FIN like a TLS close_notify (eof_received for both),
                # so the end of such a body cannot be told from a cut: refuse it up front.
                raise ConnectionError("the upstream sent an answer without a length over TLS")
            encodings = [
                coding.strip().lower()
                for name, value in exchange.headers
                if name == b"content-encoding"
                for coding in value.split(b",")
            ]
            if any(coding != b"identity" for coding in encodings):
                raise ConnectionError("the upstream answered with a content-encoding")
            return PooledAnswer(self, connection, exchange)
        except BaseException:
            if connection is not None:
                connection.close()
                self._open.discard(connection)
            self._slots.release()
            raise

    def release(self, connection: _Connection, *, reuse: bool) -> None:
        connection.exchange = None
        if reuse and connection.keep_alive and not connection.closed:
            connection.last_used = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
            self._open.discard(connection)
        self._slots.release()

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    def _request_bytes(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [
            f"POST {self._prefix}{path} HTTP/1.1",
            f"host: {self._host_header}",
            f"content-length: {len(body)}",
        ]
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
                raise ValueError("refusing a header that is not plain ASCII")  # never echoed
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body

    def _reuse(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.last_used < self._keepalive:
                return connection
            connection.close()
            self._open.discard(connection)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._connect_timeout):
            _, protocol = await loop.create_connection(
                lambda: _Connection(loop),
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        self._open.add(protocol)
        return protocol
