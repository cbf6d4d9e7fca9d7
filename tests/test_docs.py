"""The documentation's programs run as shown, and print what the page says.

Every ```python block of the pages below is a complete program: it is run as
a script, alone, in an empty directory, with warnings turned into errors.  It
must exit 0 and write nothing to stderr; if the next fenced block on the page
is a ```text block, that is what the program must print, exactly.  Fragments
that are not programs belong on other pages (concepts, design).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["docs/index.md", "docs/quickstart.md", "docs/sizing.md", "README.md"]
# Pages where every program must show its output.
OUTPUT_SHOWN = ["docs/quickstart.md"]

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(page: str) -> list[tuple[str, str, int]]:
    """``(language, code, line)`` of each fenced block of ``page``, in order."""
    text = (ROOT / page).read_text()
    return [
        (m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)
    ]


def programs(page: str) -> list[tuple[str, str | None, int]]:
    """``(code, expected output or None, line)`` of each python block of ``page``."""
    found = blocks(page)
    result = []
    for i, (language, code, line) in enumerate(found):
        if language != "python":
            continue
        after = found[i + 1] if i + 1 < len(found) else None
        expected = after[1] if after is not None and after[0] == "text" else None
        result.append((code, expected, line))
    return result


EXAMPLES = [
    pytest.param(code, expected, id=f"{page}:{line}")
    for page in PAGES
    for code, expected, line in programs(page)
]


@pytest.mark.parametrize(("code", "expected"), EXAMPLES)
def test_program_runs_as_shown(code: str, expected: str | None, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    if expected is not None:
        assert done.stdout == expected


@pytest.mark.parametrize("page", PAGES)
def test_page_has_programs(page: str) -> None:
    """A renamed fence or a moved page cannot silently drop its programs."""
    assert programs(page)


@pytest.mark.parametrize("page", OUTPUT_SHOWN)
def test_every_program_shows_its_output(page: str) -> None:
    missing = [line for _, expected, line in programs(page) if expected is None]
    assert missing == [], f"{page}: python blocks at lines {missing} have no ```text output"


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_links_resolve() -> None:
    """README links into the repository (docs/, examples/) name files and headings that exist."""
    text = (ROOT / "README.md").read_text()
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        file = ROOT / path
        if not file.is_file():
            broken.append(target)
        elif anchor:
            headings = re.findall(r"^#+ (.+)$", file.read_text(), re.M)
            if anchor not in {github_anchor(h) for h in headings}:
                broken.append(target)
    assert broken == []
    assert "docs/quickstart.md" in LINK.findall(text)


def test_the_aliases_the_api_page_documents_are_importable() -> None:
    """Every alias in the API page's table is a name ``from respool import ...`` finds."""
    import respool

    text = (ROOT / "docs/api.md").read_text()
    aliases = set(re.findall(r"^\| `(\w+)\[T\]`[^|]*\| `[^`]+` \| `(\w+)\[T\]`", text, re.M))
    names = {name for pair in aliases for name in pair}
    assert names == {"AsyncFactory", "AsyncReleaser", "AsyncCheck", "Factory", "Releaser", "Check"}
    missing = sorted(name for name in names if name not in respool.__all__)
    assert missing == []
    for name in names:
        assert getattr(respool, name) is getattr(respool._types, name)


def test_the_documented_callable_aliases_are_importable() -> None:
    """Issue 9, the smaller ones: the aliases the API page documents can be imported."""
    from respool import (  # type: ignore[attr-defined]
        AsyncCheck,
        AsyncFactory,
        AsyncReleaser,
        Check,
        Factory,
        Releaser,
    )

    for alias in (AsyncFactory, AsyncReleaser, AsyncCheck, Factory, Releaser, Check):
        assert alias is not None
    from respool import Fatal  # fatal='s type, which the signatures name

    assert Fatal is not None
