"""How every rich console in eapo is built: one function, so they all treat pipes alike.

On a terminal rich wraps text and tables to the window, which is what a reader wants.
Anywhere else (a pipe, a file, CI, a test's captured output) the width rich assumes is a
guess (80 columns, or $COLUMNS), and wrapping to it splits error lines, paths and table
cells across lines that people and tests grep. So off a terminal a console soft-wraps
(text is never broken; a long line stays one line) and has no practical width limit
(tables take the width their cells need).
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console

__all__ = ["UNLIMITED_WIDTH", "is_tty", "make_console"]

# Wide enough for any table we print; rich pads nothing to it (tables and soft-wrapped
# text take only the width they need), so it costs nothing.
UNLIMITED_WIDTH = 100_000


def make_console(*, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """A console on stdout (or stderr, or `file`) that wraps only on a terminal.

    Build it where it is used, when it is used: whether the stream is a terminal is
    decided now, from the stream as it is now (a test runner swaps `sys.stdout` per call).
    The stream itself decides, not rich's `is_terminal`, which FORCE_COLOR (set by many CI
    services for coloured logs) turns on for pipes too; colours stay rich's decision.
    """
    if is_tty(file or (sys.stderr if stderr else sys.stdout)):
        return Console(stderr=stderr, file=file)
    return Console(stderr=stderr, file=file, soft_wrap=True, width=UNLIMITED_WIDTH)


def is_tty(stream: object) -> bool:
    """Whether `stream` is an interactive terminal (False for a closed or odd stream)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # closed
        return False
