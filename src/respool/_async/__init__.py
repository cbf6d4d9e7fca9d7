"""The async face: the hand-written source of truth for ``respool._sync``."""

from .lease import AsyncLease
from .pool import AsyncPool
from .shared import AsyncSharedPool

__all__ = ["AsyncLease", "AsyncPool", "AsyncSharedPool"]
