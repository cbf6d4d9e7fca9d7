"""Several event loops: ``LoopPools`` (a pool per loop) and the loop pools' worker.

Built on ``AsyncPool`` and the paired primitives; the loop pools themselves,
``AsyncLoopPool`` and its generated twin ``LoopPool``, are in the faces.
"""

from .registry import LoopPoolInfo, LoopPools
from .worker import LoopStats

__all__ = ["LoopPoolInfo", "LoopPools", "LoopStats"]
