"""The async face: the hand-written source of truth for ``respool._sync``."""

from .pool import AsyncLease, AsyncPool

__all__ = ["AsyncLease", "AsyncPool"]
