"""Stale connections after a server restart, against a real TCP server.

The resources are TCP connections to a small echo server the test runs on
127.0.0.1 (a free port).  The pool is filled, then the server restarts: it
closes its listener and every connection, and listens again on the same
port.  Every pooled connection is now dead, though nothing on the client
side says so until it is used.

With a ``check`` that does an echo round trip, every caller afterwards gets
a live connection: each caller does its own echo round trip, and it must
succeed.  ``check_interval=0`` checks on every acquire.  With the default
``check_interval=0.5`` a connection used (or made) in the last half second is
handed out unchecked: the test shows that honestly (such a caller does get a
dead connection), then that once the interval has passed every caller gets a
live one again.

The threaded ``Pool`` uses plain sockets; ``AsyncPool`` uses
``anyio.connect_tcp`` streams, under asyncio and trio.
"""

from __future__ import annotations

import itertools
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import anyio
import anyio.abc
import pytest

from respool import AsyncPool, Pool

from .concurrency import Nursery, async_wait_until, wait_until
from .figures import figures

FIGURES = figures("stale_tcp")

PAYLOAD_TIMEOUT = 5.0  # seconds an echo may take before it counts as dead (never, when alive)
POOL_SIZE = 4
CALLERS = 8
INTERVAL = 0.5  # the pool's default check_interval

counter = itertools.count()


class EchoServer:
    """Echoes what each connection sends, from one thread; restartable on the same port."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR on POSIX
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._connections: list[socket.socket] = []
        self._wake_read, self._wake_write = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="echo-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ, "accept")
            selector.register(self._wake_read, selectors.EVENT_READ, "stop")
            while True:
                for key, _ in selector.select():
                    if key.data == "stop":
                        return
                    if key.data == "accept":
                        connection, _ = self.listener.accept()
                        self._connections.append(connection)
                        self.accepted += 1
                        selector.register(connection, selectors.EVENT_READ, "echo")
                        continue
                    connection = key.fileobj  # type: ignore[assignment]
                    try:
                        data = connection.recv(65536)
                        connection.sendall(data)  # small payloads: never blocks for long
                    except OSError:
                        data = b""
                    if not data:  # the client closed it
                        selector.unregister(connection)
                        self._connections.remove(connection)
                        connection.close()

    def stop(self) -> None:
        """Close the listener and every connection (the clients' sockets go dead)."""
        self._wake_write.send(b"x")
        self._thread.join(10)
        assert not self._thread.is_alive()
        for connection in self._connections:
            connection.close()
        self._connections.clear()
        self.listener.close()
        self._wake_read.close()
        self._wake_write.close()

    def restart(self) -> EchoServer:
        """Stop, then listen again on the same port: a new server for new connections."""
        self.stop()
        return EchoServer(self.port)


class Servers:
    """The server now running (it changes on restart); stopped at the end of the test."""

    def __init__(self) -> None:
        self.current = EchoServer()
        self.port = self.current.port

    def restart(self) -> None:
        self.current = self.current.restart()


@pytest.fixture
def servers() -> Iterator[Servers]:
    running = Servers()
    try:
        yield running
    finally:
        running.current.stop()


def payload() -> bytes:
    return f"ping {next(counter)}\n".encode()


# -- the threaded pool, plain sockets -----------------------------------------------


def echo(sock: socket.socket) -> None:
    """An echo round trip; raises if the connection is dead."""
    sent = payload()
    sock.sendall(sent)
    got = b""
    while len(got) < len(sent):
        chunk = sock.recv(len(sent) - len(got))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        got += chunk
    if got != sent:
        raise ConnectionError(f"sent {sent!r}, got {got!r} back")


class Sockets:
    """Factory, releaser and check for the threaded pool; counts checks."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.checks = 0
        self.failed_checks = 0

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=PAYLOAD_TIMEOUT)

    def check(self, sock: socket.socket) -> None:
        self.checks += 1
        try:
            echo(sock)
        except OSError:  # ConnectionError and socket timeouts are OSErrors
            self.failed_checks += 1
            raise

    def pool(self, **kwargs: object) -> Pool[socket.socket]:
        return Pool(
            self.connect,
            socket.socket.close,
            pool_size=POOL_SIZE,
            check=self.check,
            **kwargs,  # type: ignore[arg-type]
        )


def every_caller_gets_a_live_connection(pool: Pool[socket.socket]) -> int:
    """CALLERS threads, 3 leases each, each lease an echo round trip that must work."""
    served = []

    def caller() -> None:
        for _ in range(3):
            with pool.lease(timeout=10) as sock:
                echo(sock)
                served.append(sock)

    with Nursery() as nursery:
        for _ in range(CALLERS):
            nursery.start_soon(caller)
    assert len(served) == CALLERS * 3
    return len(served)


def test_after_a_restart_every_thread_gets_a_live_socket(servers: Servers) -> None:
    sockets = Sockets(servers.port)
    with sockets.pool(check_interval=0) as pool:
        assert pool.prefill() == POOL_SIZE
        wait_until(lambda: servers.current.accepted == POOL_SIZE)
        servers.restart()  # every pooled socket is now dead
        every_caller_gets_a_live_connection(pool)
        stats = pool.stats()
        assert sockets.failed_checks == POOL_SIZE == stats.broken  # each found out once
        FIGURES.add(restarts=1, leases_after_restart=CALLERS * 3, dead_caught_by_check=POOL_SIZE)
        wait_until(lambda: servers.current.accepted == stats.created - POOL_SIZE)  # the new ones
        assert stats.size <= POOL_SIZE


def test_default_check_interval_trusts_recent_use_then_catches_every_dead_socket(
    servers: Servers,
) -> None:
    sockets = Sockets(servers.port)
    with sockets.pool() as pool:  # check_interval=0.5
        made_after = time.monotonic()
        assert pool.prefill() == POOL_SIZE
        servers.restart()
        sock = pool.acquire(timeout=10)
        within_interval = time.monotonic() - made_after < INTERVAL
        if within_interval:
            # Honest: made less than check_interval ago, it is handed out unchecked,
            # and it is dead.  The caller finds out and discards it.
            assert sockets.checks == 0
            with pytest.raises(OSError):
                echo(sock)
            pool.discard(sock)
        else:  # a very slow machine: the interval passed, so it was checked
            assert sockets.checks >= 1
            echo(sock)
            pool.release(sock)
        time.sleep(INTERVAL + 0.1)  # every idle socket is now due for a check
        every_caller_gets_a_live_connection(pool)
        assert sockets.failed_checks == POOL_SIZE - within_interval
        FIGURES.add(
            restarts=1,
            leases_after_restart=CALLERS * 3 + 1,
            dead_caught_by_check=sockets.failed_checks,
            dead_handed_out_within_check_interval=int(within_interval),
        )


# -- the async pool, anyio streams (asyncio and trio) --------------------------------


async def echo_stream(stream: anyio.abc.ByteStream) -> None:
    """An echo round trip; raises if the connection is dead."""
    sent = payload()
    with anyio.fail_after(PAYLOAD_TIMEOUT):
        await stream.send(sent)
        got = b""
        while len(got) < len(sent):
            got += await stream.receive(len(sent) - len(got))  # EndOfStream once closed
    if got != sent:
        raise ConnectionError(f"sent {sent!r}, got {got!r} back")


class Streams:
    """Factory, releaser and check for the async pool; counts checks."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.checks = 0
        self.failed_checks = 0

    async def connect(self) -> anyio.abc.SocketStream:
        return await anyio.connect_tcp("127.0.0.1", self.port)

    async def close(self, stream: anyio.abc.SocketStream) -> None:
        await stream.aclose()

    async def check(self, stream: anyio.abc.SocketStream) -> None:
        self.checks += 1
        try:
            await echo_stream(stream)
        except Exception:
            self.failed_checks += 1
            raise

    def pool(self, **kwargs: object) -> AsyncPool[anyio.abc.SocketStream]:
        return AsyncPool(
            self.connect,
            self.close,
            pool_size=POOL_SIZE,
            check=self.check,
            **kwargs,  # type: ignore[arg-type]
        )


async def every_task_gets_a_live_connection(pool: AsyncPool[anyio.abc.SocketStream]) -> None:
    served = []

    async def caller() -> None:
        for _ in range(3):
            async with pool.lease(timeout=10) as stream:
                await echo_stream(stream)
                served.append(stream)

    async with anyio.create_task_group() as tg:
        for _ in range(CALLERS):
            tg.start_soon(caller)
    assert len(served) == CALLERS * 3


@pytest.mark.anyio
async def test_after_a_restart_every_task_gets_a_live_stream(servers: Servers) -> None:
    streams = Streams(servers.port)
    async with streams.pool(check_interval=0) as pool:
        assert await pool.prefill() == POOL_SIZE
        await async_wait_until(lambda: servers.current.accepted == POOL_SIZE)
        servers.restart()
        await every_task_gets_a_live_connection(pool)
        stats = pool.stats()
        assert streams.failed_checks == POOL_SIZE == stats.broken
        FIGURES.add(restarts=1, leases_after_restart=CALLERS * 3, dead_caught_by_check=POOL_SIZE)
        await async_wait_until(lambda: servers.current.accepted == stats.created - POOL_SIZE)


@pytest.mark.anyio
async def test_default_check_interval_trusts_recent_use_then_catches_every_dead_stream(
    servers: Servers,
) -> None:
    streams = Streams(servers.port)
    async with streams.pool() as pool:  # check_interval=0.5
        made_after = time.monotonic()
        assert await pool.prefill() == POOL_SIZE
        servers.restart()
        stream = await pool.acquire(timeout=10)
        within_interval = time.monotonic() - made_after < INTERVAL
        if within_interval:  # handed out unchecked, and dead
            assert streams.checks == 0
            with pytest.raises(Exception) as info:
                await echo_stream(stream)
            assert isinstance(info.value, (OSError, anyio.EndOfStream, anyio.BrokenResourceError))
            await pool.discard(stream)
        else:  # a very slow machine: the interval passed, so it was checked
            assert streams.checks >= 1
            await echo_stream(stream)
            await pool.release(stream)
        await anyio.sleep(INTERVAL + 0.1)
        await every_task_gets_a_live_connection(pool)
        assert streams.failed_checks == POOL_SIZE - within_interval
        FIGURES.add(
            restarts=1,
            leases_after_restart=CALLERS * 3 + 1,
            dead_caught_by_check=streams.failed_checks,
            dead_handed_out_within_check_interval=int(within_interval),
        )
