"""Raw TCP under trio: ``anyio.connect_tcp`` streams in a ``respool.AsyncPool``.

    python examples/trio_tcp.py

The protocol is Redis' (RESP), spoken by hand over a plain socket, against
``$RESPOOL_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``; only its host
and port are used).  The code is anyio's, so it runs under asyncio too; the
script runs it under trio.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

import respool

URL = os.environ.get("RESPOOL_REDIS_URL", "redis://127.0.0.1:6379/0")


class RespError(Exception):
    """The server answered with an error (``-ERR ...``)."""


class RespConnection:
    """One TCP connection speaking RESP: send a command, read its reply."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)
        self.in_flight = False  # a command was sent and its reply not read in full

    async def command(self, *args: str | int) -> str | int | bytes | None:
        """Send one command and return its reply; raise :class:`RespError` for an error reply."""
        parts = [str(arg).encode() for arg in args]
        request = b"".join(
            [b"*%d\r\n" % len(parts)] + [b"$%d\r\n%s\r\n" % (len(p), p) for p in parts]
        )
        self.in_flight = True
        await self.stream.send(request)
        reply = await self._read_reply()
        self.in_flight = False
        if isinstance(reply, RespError):
            raise reply
        return reply

    async def _read_reply(self) -> str | int | bytes | RespError | None:
        line = await self.reader.receive_until(b"\r\n", 65536)
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            return (await self.reader.receive_exactly(length + 2))[:-2]
        raise ValueError(f"reply type {kind!r} is not handled by this small client")


async def connect(url: str = URL) -> RespConnection:
    """The factory: one TCP connection (the acquire deadline bounds the connect)."""
    address = urlsplit(url)
    stream = await anyio.connect_tcp(address.hostname or "127.0.0.1", address.port or 6379)
    return RespConnection(stream)


async def check(conn: RespConnection) -> bool:
    """Before handing out an idle connection: PING.  Raising or ``False`` means broken."""
    with anyio.fail_after(5):
        return await conn.command("PING") == "PONG"


async def reset(conn: RespConnection) -> None:
    """On release: a holder cancelled mid-command leaves its reply unread on the wire,
    where the next holder would read it as the answer to its own command.
    Raising here makes the pool close that connection instead."""
    if conn.in_flight:
        raise RuntimeError("a reply is still unread: this connection is out of step")


async def close(conn: RespConnection) -> None:
    """The releaser."""
    await conn.stream.aclose()


def make_pool(url: str = URL, **options: Any) -> respool.AsyncPool[RespConnection]:
    """A pool of up to 4 connections; ``options`` go to ``respool.AsyncPool``."""
    options.setdefault("pool_size", 4)
    return respool.AsyncPool(lambda: connect(url), close, check=check, reset=reset, **options)


async def demo(url: str = URL) -> respool.PoolStats:
    """20 tasks, 10 commands each, through 4 connections; return the final stats."""
    async with make_pool(url) as pool:

        async def worker(n: int) -> None:
            for i in range(10):
                async with pool.lease() as conn:
                    assert await conn.command("ECHO", f"{n}-{i}") == f"{n}-{i}".encode()

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(worker, n)
    stats = pool.stats()
    assert stats.size == 0 and stats.closed == stats.created, stats  # all closed on exit
    print(f"ok: anyio TCP: {stats.acquired} leases, {stats.created} connections opened")
    return stats


def main() -> None:
    anyio.run(demo, backend="trio")


if __name__ == "__main__":
    main()
