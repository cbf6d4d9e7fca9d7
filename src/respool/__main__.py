"""``python -m respool COMMAND``: the package's command line.

Commands:
    demo [--seconds N]: pool sqlite3 connections from threads, asyncio and
        trio at once, with a live display, a summary and checks; needs the
        ``demo`` extra (``pip install "respool[demo]"``).

Exit status: what the command returns (the demo: 0 if every check held, 1 if
one failed, 130 after Ctrl-C); 2 for a usage error or a missing extra.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DEMO_EXTRA_MISSING = (
    'python -m respool demo needs rich, from the demo extra:\n    pip install "respool[demo]"'
)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return seconds


def parser() -> argparse.ArgumentParser:
    """The command line's argument parser."""
    top = argparse.ArgumentParser(prog="python -m respool", description="respool's command line.")
    commands = top.add_subparsers(dest="command", required=True, title="commands")
    demo = commands.add_parser(
        "demo",
        help="pool sqlite3 connections from threads, asyncio and trio, live",
        description=(
            "Pool sqlite3 connections to a temporary database from threads (Pool), "
            "asyncio tasks and trio tasks (an AsyncPool each) at once, with deliberate "
            "contention and a few broken connections; show every pool's stats live, then "
            "a summary and invariant checks. Exit status 0 if every check held."
        ),
    )
    demo.add_argument(
        "--seconds",
        type=_seconds,
        default=6.0,
        metavar="N",
        help="how long the workers run (default: %(default)g)",
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named in ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = parser().parse_args(argv)
    if args.command == "demo":
        try:
            import rich  # noqa: F401
        except ImportError:
            print(DEMO_EXTRA_MISSING, file=sys.stderr)
            return 2
        from . import _demo

        return _demo.main(args.seconds)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse refuses others


if __name__ == "__main__":
    sys.exit(main())
