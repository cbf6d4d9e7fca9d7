"""A snapshot of a pool's state and counters."""

from __future__ import annotations

import attrs


@attrs.frozen
class PoolStats:
    """What a pool held and had done at one moment (``pool.stats()``).

    Gauges describe that moment; counters add up since the pool was made.
    ``size + creating`` is the number of slots taken and never exceeds
    ``pool_size`` (``burst_limit`` with bursts).

    Attributes:
        pool_size: gauge: the most resources the pool keeps alive at once.
        size: gauge: resources alive now: idle, leased, or being closed.
        idle: gauge: resources waiting in the pool to be handed out.
        leased: gauge: resources handed out and not yet released.
        creating: gauge: factory calls under way (each holds one of the ``pool_size``
            slots).
        waiting: gauge: callers parked in ``acquire`` until a resource or slot frees.
        created: counter: resources the factory returned.
        closed: counter: resources gone: given to the releaser (successfully or
            not), or lost (garbage-collected while leased).
        acquired: counter: resources handed to callers.
        timeouts: counter: ``PoolTimeout`` errors raised.
        create_errors: counter: factory calls that raised.
        close_errors: counter: releaser calls that raised.
        broken: counter: resources closed as broken: a failed ``check`` or
            ``reset``, or ``discard()``.
        lost: counter: leased resources garbage-collected without being released
            (each also emitted a ``ResourceWarning``; its slot was recovered).
        min_size: gauge: the fewest resources an opened pool keeps alive.
        burst: gauge: resources alive above ``pool_size`` (``burst_limit``, or a
            pool shrunk by ``resize`` whose surplus is still leased).
        exhausted: counter: ``acquire`` calls refused with ``PoolExhausted``
            because ``max_waiting`` callers were waiting already.
    """

    pool_size: int
    size: int
    idle: int
    leased: int
    creating: int
    waiting: int
    created: int
    closed: int
    acquired: int
    timeouts: int
    create_errors: int
    close_errors: int
    broken: int = 0
    lost: int = 0
    min_size: int = 0
    burst: int = 0
    exhausted: int = 0

    def __str__(self) -> str:
        return (
            f"pool_size={self.pool_size} size={self.size} idle={self.idle} "
            f"leased={self.leased} creating={self.creating} waiting={self.waiting}"
            + (f" burst={self.burst}" if self.burst else "")
        )
