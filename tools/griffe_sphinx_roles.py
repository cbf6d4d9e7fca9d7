"""Griffe extension for the docs site: Sphinx roles in docstrings become links.

The docstrings use Sphinx roles (``:meth:`release```, ``:class:`~respool.PoolStats```),
which ``help()`` and IDEs show as they are, but which Markdown would print
verbatim.  mkdocstrings loads this file (``mkdocs.yml``) and it rewrites each
role into an autorefs cross-reference, ``[`release`][respool.Pool.release]``,
so the API page links it; with ``mkdocs build --strict`` a role that names no
documented object fails the build.

Names resolve against the public ``respool`` namespace: a bare method or
attribute name belongs to the class being documented, and a dotted or class
name is prefixed with ``respool.``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|attr|exc|obj|data):`(~?)([\w.]+)(\(\))?`")


def _owner(obj: griffe.Object) -> griffe.Object | None:
    """The class a bare member name refers to, if ``obj`` is or is in one."""
    if obj.is_class:
        return obj
    parent = obj.parent
    if parent is not None and parent.is_class:
        return parent
    return None


def _target(obj: griffe.Object, name: str) -> str:
    if name.startswith("respool."):
        return name
    owner = _owner(obj)
    if "." not in name and not name[:1].isupper() and owner is not None:
        return f"respool.{owner.name}.{name}"
    return f"respool.{name}"


def rewrite(obj: griffe.Object, text: str) -> str:
    """Every Sphinx role in ``text`` as a Markdown cross-reference."""

    def link(match: re.Match[str]) -> str:
        short, name, parens = match.groups()
        shown = name.rsplit(".", 1)[-1] if short else name
        return f"[`{shown}{parens or ''}`][{_target(obj, name)}]"

    return ROLE.sub(link, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj, obj.docstring.value)
