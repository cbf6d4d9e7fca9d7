"""docs/recipes.md quotes every recipe in ``examples/`` in full: the page and the files agree.

A quote is a marker line, then a Python code block holding the whole file::

    <!-- example: examples/psycopg_sync.py -->
    ```python
    ...the file, byte for byte...
    ```

After editing an example, ``python tests/test_recipes_doc.py --write`` copies
every quoted file into the page again.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "recipes.md"
QUOTE = re.compile(r"<!-- example: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```\n", re.DOTALL)
# Examples that are not recipes: the page links to them instead of quoting them.
NOT_QUOTED = {"examples/sqlite_example.py"}


def quotes(page: str) -> list[tuple[str, str]]:
    """``(path, code)`` for each quote on the page, in order."""
    return [(m["path"], m["code"]) for m in QUOTE.finditer(page)]


def test_every_quote_is_its_file_verbatim() -> None:
    page_quotes = quotes(PAGE.read_text(encoding="utf-8"))
    assert page_quotes, f"no quotes found in {PAGE}"
    for path, code in page_quotes:
        source = (ROOT / path).read_text(encoding="utf-8")
        diff = "".join(
            difflib.unified_diff(
                source.splitlines(keepends=True),
                code.splitlines(keepends=True),
                f"{path}",
                f"{PAGE.relative_to(ROOT)} quoting {path}",
            )
        )
        assert code == source, (
            f"docs/recipes.md no longer matches {path}; "
            f"run `python tests/test_recipes_doc.py --write`:\n{diff}"
        )


def test_every_recipe_is_quoted_once() -> None:
    quoted = [path for path, _ in quotes(PAGE.read_text(encoding="utf-8"))]
    recipes = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "examples").rglob("*.py")
        if "__pycache__" not in path.parts
    )
    assert sorted(quoted) == [path for path in recipes if path not in NOT_QUOTED]


def write() -> None:
    """Copy every quoted file into the page again."""

    def fresh(match: re.Match[str]) -> str:
        source = (ROOT / match["path"]).read_text(encoding="utf-8")
        return f"<!-- example: {match['path']} -->\n```python\n{source}```\n"

    PAGE.write_text(QUOTE.sub(fresh, PAGE.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: python {sys.argv[0]} --write   (rewrites the quotes in {PAGE})")
    write()
