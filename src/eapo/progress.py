"""Progress display for long loops (training steps, evaluation episodes, compared arms).

One small API for every command::

    with progress(total=len(problems), description="eval aime2024") as bar:
        for p in problems:
            ...
            bar.advance()          # or bar.update(completed) for an absolute position
            bar.note("acc=0.41")   # short status text shown after the bar

On a terminal it is a live rich bar with count, rate, elapsed time and ETA. Anywhere else
(CI logs, files, pipes) nothing is redrawn: a plain log line with the same figures is
written at the start, then at most every `log_every_s` seconds, and at the end, so a CI
log stays readable. Bars opened inside another bar (an evaluation inside training) stack
under it, because they share one console.

It does not configure logging: the lines go to `logging.getLogger("eapo.progress")` and
appear where the CLI sends log records.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress as RichProgress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from eapo.console import make_console

__all__ = ["ProgressBar", "format_duration", "progress", "shared_console"]

log = logging.getLogger("eapo.progress")


@functools.lru_cache(maxsize=1)
def shared_console() -> Console:
    """The console every bar draws on (stderr, like tqdm). Nested bars (an evaluation inside
    a training run) must share one console for rich to stack them instead of fighting; a
    CLI that logs to a terminal should log through `rich.logging.RichHandler(console=
    shared_console())`, so log lines print above a live bar instead of through it.
    Built like every other console (`eapo.console.make_console`)."""
    return make_console(stderr=True)


def format_duration(seconds: float | None) -> str:
    """`h:mm:ss`, or `?` when unknown.

    >>> format_duration(3725.4)
    '1:02:05'
    >>> format_duration(None)
    '?'
    """
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _RateColumn(ProgressColumn):
    """Items per second (or seconds per item when slower than one a second)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("? it/s", style="progress.data.speed")
        text = f"{speed:.2f} it/s" if speed >= 1 else f"{1 / speed:.1f} s/it"
        return Text(text, style="progress.data.speed")


class ProgressBar:
    """A progress bar that is live on a terminal and a periodic log line elsewhere.

    Use `progress(...)` for the context-manager form; `start()`/`close()` exist for
    owners whose begin and end are separate events (a trainer callback)."""

    def __init__(
        self,
        total: int | None,
        description: str,
        *,
        initial: int = 0,
        live: bool | None = None,
        console: Console | None = None,
        log_every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError(f"progress total must be >= 0 or None, got {total}")
        if log_every_s < 0:
            raise ValueError(f"log_every_s must be >= 0, got {log_every_s}")
        self.total, self.description = total, description
        self.completed = self.initial = initial
        self.text = ""
        self.console = console or shared_console()
        self.live = self.console.is_terminal if live is None else live
        self.log_every_s, self.clock = log_every_s, clock
        self._rich: RichProgress | None = None
        self._task: TaskID | None = None
        self._t0 = self._last_log = 0.0
        self._started = False

    # -- figures -----------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        return self.clock() - self._t0 if self._started else 0.0

    @property
    def rate(self) -> float | None:
        """Items per second since the start (items before `initial` do not count)."""
        done, elapsed = self.completed - self.initial, self.elapsed_s
        return done / elapsed if done > 0 and elapsed > 0 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        if self.total is None or rate is None:
            return None
        return max(self.total - self.completed, 0) / rate

    def line(self) -> str:
        """The log line: `desc: 12/40 (30%) 0.52 it/s elapsed 0:00:23 ETA 0:00:54 | note`."""
        count = f"{self.completed}/{self.total}" if self.total is not None else f"{self.completed}"
        if self.total:
            count += f" ({100 * self.completed / self.total:.0f}%)"
        rate = self.rate
        speed = "? it/s" if rate is None else (f"{rate:.2f} it/s" if rate >= 1 else f"{1 / rate:.1f} s/it")
        out = f"{self.description}: {count} {speed} elapsed {format_duration(self.elapsed_s)}"
        if self.total is not None:
            out += f" ETA {format_duration(self.eta_s)}"
        return out + (f" | {self.text}" if self.text else "")

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> ProgressBar:
        if self._started:
            return self
        self._started = True
        self._t0 = self._last_log = self.clock()
        if self.live:
            self._rich = RichProgress(
                TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                _RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"), console=self.console, transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total, completed=self.initial, note="")
        else:
            log.info("%s", self.line())
        return self

    def advance(self, n: int = 1) -> None:
        self.update(self.completed + n)

    def update(self, completed: int) -> None:
        """Set the absolute position (e.g. the trainer's global step)."""
        self.completed = completed
        self._refresh()

    def note(self, text: str) -> None:
        """Short status text (current reward, accuracy) shown with the bar and in log lines."""
        self.text = text
        self._refresh()

    def close(self) -> None:
        if not self._started:
            return
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        else:
            log.info("%s", self.line())
        self._started = False

    def _refresh(self) -> None:
        if not self._started:
            return
        if self._rich is not None and self._task is not None:
            self._rich.update(self._task, completed=self.completed, note=self.text)
            return
        now = self.clock()
        if now - self._last_log >= self.log_every_s and (self.total is None or self.completed < self.total):
            self._last_log = now
            log.info("%s", self.line())

    def __enter__(self) -> ProgressBar:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextmanager
def progress(
    total: int | None,
    description: str,
    *,
    initial: int = 0,
    live: bool | None = None,
    console: Console | None = None,
    log_every_s: float = 30.0,
) -> Iterator[ProgressBar]:
    """A progress bar for `total` items (None: unknown), closed on exit, also on errors.

    `live=None` decides by the console: a live bar on a terminal, log lines otherwise."""
    bar = ProgressBar(total, description, initial=initial, live=live, console=console, log_every_s=log_every_s)
    with bar:
        yield bar
