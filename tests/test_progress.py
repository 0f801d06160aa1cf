"""The progress helper: exact figures in log mode, a live bar on a terminal, nesting."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from eapo.progress import ProgressBar, progress


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_log_mode_lines_have_rate_eta_and_are_periodic(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="eapo.progress")
    bar = ProgressBar(40, "train eapo", live=False, log_every_s=30, clock=clock)
    with bar:
        clock.t += 10
        bar.update(10)  # 10 s after the start: below the period, no line
        assert len(caplog.records) == 1
        clock.t += 20
        bar.advance(5)  # 30 s: 15 done at 0.5 it/s, 25 left -> ETA 50 s
        bar.note("reward=0.25")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "train eapo: 0/40 (0%) ? it/s elapsed 0:00:00 ETA ?"
    assert lines[1] == "train eapo: 15/40 (38%) 2.0 s/it elapsed 0:00:30 ETA 0:00:50"
    assert lines[2] == "train eapo: 15/40 (38%) 2.0 s/it elapsed 0:00:30 ETA 0:00:50 | reward=0.25"  # closing line
    assert len(lines) == 3


def test_initial_position_does_not_count_toward_rate():
    clock = Clock()
    bar = ProgressBar(100, "resume", initial=50, live=False, clock=clock).start()
    clock.t += 10
    bar.update(70)  # 20 items in 10 s since the resume
    assert bar.rate == pytest.approx(2.0)
    assert bar.eta_s == pytest.approx(15.0)
    bar.close()


def test_unknown_total_and_bad_arguments():
    bar = ProgressBar(None, "stream", live=False, clock=Clock()).start()
    bar.advance(3)
    assert bar.line() == "stream: 3 ? it/s elapsed 0:00:00"
    with pytest.raises(ValueError, match="total"):
        ProgressBar(-1, "x")


def test_live_bar_on_a_terminal_and_nested_bars_share_the_console(caplog):
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    caplog.set_level(logging.INFO, logger="eapo.progress")
    with progress(3, "outer", console=console) as outer:
        with progress(2, "inner", console=console) as inner:
            inner.advance(2)
        outer.advance(3)
        outer.note("acc=0.5")
    out = buf.getvalue()
    assert "outer" in out and "inner" in out and "3/3" in out and "acc=0.5" in out
    assert not caplog.records  # live mode writes no log lines


def test_closes_on_error(caplog):
    caplog.set_level(logging.INFO, logger="eapo.progress")
    with pytest.raises(RuntimeError):
        with progress(5, "boom", live=False) as bar:
            bar.advance()
            raise RuntimeError("stop")
    assert caplog.records[-1].getMessage().startswith("boom: 1/5 (20%)")
