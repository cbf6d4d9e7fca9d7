# generated from src/respool/_async/__init__.py by unasync_build.py: do not edit, edit the source
"""The threaded face, generated from ``respool._async``."""

from .lease import Lease
from .pool import Pool
from .shared import SharedPool

__all__ = ["Lease", "Pool", "SharedPool"]
