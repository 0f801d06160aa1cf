"""What every `eapo` command shares: how logging is set up and how output consoles are made.

Commands import from here, never from each other (`eapo.cli.main` registers the commands
from the other modules, so importing it back from them was an import circle).
"""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from typer.core import TyperGroup

from eapo.console import is_tty, make_console

__all__ = ["EapoGroup", "output_console", "setup_logging"]


def setup_logging(verbose: bool) -> None:
    """Plain log lines on stderr (never wrapped: a handler writes each record as one line),
    DEBUG with --verbose; the HTTP and file-lock libraries only from WARNING up."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def output_console() -> Console:
    """The stdout console of one command call: wraps on a terminal, never off one
    (`eapo.console`). Made per call, not at import, so it sees the stream of this call."""
    return make_console()


class EapoGroup(TyperGroup):
    """Typer's group, except that usage errors (a bad option value) off a terminal are
    click's plain `Error: ...` line instead of rich's boxed panel: the panel wraps the
    message to the assumed width, which splits it for anyone who greps a log."""

    def main(self, *args, **kwargs):  # type: ignore[override]
        if not is_tty(sys.stderr):
            self.rich_markup_mode = None  # this group object is built afresh for every call
        return super().main(*args, **kwargs)
