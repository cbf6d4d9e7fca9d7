"""The redis-py presets: single-connection clients in a :class:`~respool.Pool` (threads) or,
with ``redis.asyncio``, an :class:`~respool.AsyncPool` (asyncio only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import AsyncPool, Pool

if TYPE_CHECKING:
    from redis import Redis
    from redis.asyncio import Redis as AsyncRedis


def _errors() -> tuple[type[BaseException], ...]:
    from redis import exceptions

    return (exceptions.ConnectionError, exceptions.TimeoutError)


def _check(client: Redis) -> None:
    client.ping()


def _close(client: Redis) -> None:
    client.close()


async def _check_async(client: AsyncRedis) -> None:
    await client.ping()


async def _close_async(client: AsyncRedis) -> None:
    await client.aclose()


def redis(url: str, **client_kwargs: Any) -> dict[str, Any]:
    """The :class:`~respool.Pool` keyword arguments for redis-py clients (threads).

    ``Pool(**presets.redis(url), pool_size=10)``.  Sets:

    - ``factory``: ``redis.Redis.from_url(url, single_connection_client=True,
      **client_kwargs)``: each client holds one connection, opened here, so one
      pooled resource is one connection (redis-py's own connection pool is not
      used);
    - ``releaser``: ``client.close()``;
    - ``check``: ``PING`` on a client idle longer than ``check_interval``;
    - ``discard_on``: ``redis.exceptions.ConnectionError`` and
      ``redis.exceptions.TimeoutError``: such an error raised out of a
      ``lease()`` body discards the client.

    Socket timeouts are redis-py's (``socket_timeout`` and
    ``socket_connect_timeout`` in ``client_kwargs``); waiting for a client is
    the pool's: the acquire deadline bounds the wait, and a connect under way
    when its caller gives up finishes in the background for the next one.
    """
    from redis import Redis as Client

    def connect() -> Redis:
        client = Client.from_url(url, single_connection_client=True, **client_kwargs)
        return client

    return {"factory": connect, "releaser": _close, "check": _check, "discard_on": _errors()}


def redis_async(url: str, **client_kwargs: Any) -> dict[str, Any]:
    """The :class:`~respool.AsyncPool` keyword arguments for ``redis.asyncio`` clients.

    ``AsyncPool(**presets.redis_async(url), pool_size=10)``.  As :func:`~respool.presets.redis`,
    awaited: the factory opens the client's one connection
    (``await client.initialize()``), the releaser is ``await client.aclose()``,
    ``check`` is ``PING``.  Timeouts and cancellation are the pool's.
    ``redis.asyncio`` runs on asyncio only, not trio.
    """
    from redis.asyncio import Redis as Client

    async def connect() -> AsyncRedis:
        client = Client.from_url(url, single_connection_client=True, **client_kwargs)
        try:
            return await client.initialize()
        except BaseException:
            await client.aclose()
            raise

    return {
        "factory": connect,
        "releaser": _close_async,
        "check": _check_async,
        "discard_on": _errors(),
    }


def redis_pool(
    url: str,
    *,
    pool_size: int = 10,
    client_kwargs: Mapping[str, Any] | None = None,
    **pool_kwargs: Any,
) -> Pool[Redis]:
    """A :class:`~respool.Pool` of redis-py clients: :func:`~respool.presets.redis`'s settings.

    ``client_kwargs`` go to ``redis.Redis.from_url``; ``pool_kwargs`` go to
    the pool and override the preset's.  Timeouts and cancellation behave as
    the pool documents.
    """
    options = redis(url, **dict(client_kwargs or {}))
    options.update(pool_kwargs)
    return Pool(pool_size=pool_size, **options)


def redis_async_pool(
    url: str,
    *,
    pool_size: int = 10,
    client_kwargs: Mapping[str, Any] | None = None,
    **pool_kwargs: Any,
) -> AsyncPool[AsyncRedis]:
    """An :class:`~respool.AsyncPool` of ``redis.asyncio`` clients, with the settings of
    :func:`~respool.presets.redis_async`.

    ``client_kwargs`` go to ``redis.asyncio.Redis.from_url``; ``pool_kwargs``
    go to the pool and override the preset's.  Timeouts and cancellation
    behave as the pool documents.  asyncio only.
    """
    options = redis_async(url, **dict(client_kwargs or {}))
    options.update(pool_kwargs)
    return AsyncPool(pool_size=pool_size, **options)
