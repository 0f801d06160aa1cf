"""Output written to a non-terminal is never hard-wrapped: an error naming a long path, a
configuration error listing many keys, a usage error and a table each stay whole lines
however narrow $COLUMNS says the screen is (issue 16: a test failed or passed depending
on the length of the machine's temp path). On a terminal rich still wraps."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.table import Table
from typer.testing import CliRunner

from eapo.cli.main import app
from eapo.console import make_console

NARROW = {"COLUMNS": "40"}


def _invoke(*args: str):
    return CliRunner(env=NARROW).invoke(app, list(args))


@pytest.fixture
def long_missing(tmp_path) -> Path:
    """A missing folder whose path is far wider than 40 (or 80) columns, with spaces in it."""
    return tmp_path / ("deep-" * 30) / "a folder with spaces in its name" / "missing"


def test_report_error_for_a_long_missing_path_is_one_line(long_missing):
    res = _invoke("report", str(long_missing))
    assert res.exit_code == 2
    assert res.output.splitlines() == [f"error: {long_missing}: no such run folder"]


def test_report_error_is_one_line_through_a_pipe_too(long_missing):
    """The real thing: a separate process whose stdout is a pipe, not a test runner's buffer."""
    script = Path(sys.executable).with_name("eapo")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "eapo.cli.main"]
    done = subprocess.run([*cmd, "report", str(long_missing)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **NARROW})
    assert done.returncode == 2
    assert done.stdout.splitlines() == [f"error: {long_missing}: no such run folder"]


def test_a_long_configuration_error_is_one_line():
    res = _invoke("train", "--set", "rl.lr_scheduler_type=cosine")
    assert res.exit_code == 2
    (line,) = res.output.splitlines()
    assert line.startswith("configuration error: unknown key 'rl.lr_scheduler_type'. Allowed keys under 'rl': ")
    assert line.endswith(", trl")


def test_a_usage_error_is_a_plain_line_not_a_wrapped_panel():
    res = _invoke("compare", "--seeds", "x")
    assert res.exit_code == 2
    assert "Error: Invalid value: --seeds takes a count (3) or a list (0,1,2), got 'x'" in res.output.splitlines()


def _table() -> Table:
    table = Table(title="a title that is much longer than forty columns, with a path /" + "x" * 60)
    for col in ("policy", "greedy", "avg@4", "pass@1", "pass@2", "consult attempts", "wall s"):
        table.add_column(col)
    table.add_row("EAPO (larger groups, long label)", "12.5", "10.0", "11.0", "13.0", "0.52", "123")
    return table


def test_a_table_off_a_terminal_takes_the_width_it_needs(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    buf = io.StringIO()
    make_console(file=buf).print(_table())
    lines = buf.getvalue().splitlines()
    assert lines[0] == "a title that is much longer than forty columns, with a path /" + "x" * 60
    row = next(line for line in lines if "EAPO" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == ["EAPO (larger groups, long label)", "12.5", "10.0", "11.0",
                                                         "13.0", "0.52", "123"]
    assert max(map(len, lines)) < 200  # as wide as the cells, not padded to the "unlimited" width


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_rich_still_wraps(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    buf = _Terminal()
    make_console(file=buf).print("error: " + "word " * 30)
    assert len(buf.getvalue().splitlines()) > 1 and max(map(len, buf.getvalue().splitlines())) <= 40


def test_force_color_on_a_pipe_does_not_bring_wrapping_back(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("FORCE_COLOR", "1")  # set by many CI services; rich then thinks it is a terminal
    buf = io.StringIO()
    make_console(file=buf).print("error: " + "word " * 30)
    assert len(buf.getvalue().splitlines()) == 1
