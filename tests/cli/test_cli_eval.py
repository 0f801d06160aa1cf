"""`eapo eval` runs the tiny policy over a few items of every registered non-code benchmark
(expert-free, through the real loader, rollout engine and scorer) and writes its files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eapo.cli.main import app
from eapo.evaluation.benchmarks import BENCHMARKS, data_dir


def _data_or_skip():
    try:
        data_dir()
    except (FileNotFoundError, OSError) as e:
        pytest.skip(f"benchmark data not available: {e}")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in BENCHMARKS.names() if BENCHMARKS.get(n).scorer != "code"])
def test_eval_every_benchmark_end_to_end(tmp_path, name):
    _data_or_skip()
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["eval", "--benchmark", name, "--limit", "2", "-n", "2", "-k", "1,2", "--turns", "2",
                                   "--tokens-per-turn", "16", "--max-tokens", "24", "--out", str(out),
                                   "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == name and summary["eval/problems"] == 2
    assert 0.0 <= summary["eval/avg@n"] <= 1.0
    items = (out / "items.jsonl").read_text().splitlines()
    assert len(items) == 2 * 2 + 2  # n samples per problem plus one greedy


def test_eval_refuses_code_benchmarks(tmp_path):
    _data_or_skip()
    res = CliRunner().invoke(app, ["eval", "--benchmark", "humaneval", "--limit", "1", "--cache-dir", str(tmp_path)])
    assert res.exit_code == 2 and "eapo score --scorer code" in res.output
