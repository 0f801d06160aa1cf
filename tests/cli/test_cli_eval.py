"""`eapo eval` from the command line with the tiny policy: a few items of every registered
benchmark end to end (code ones run in the sandbox), the expert-assisted workflow from an
`experts:` YAML, continuing an interrupted run, and refusing a changed configuration."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eapo.cli.main import app
from eapo.evaluation.benchmarks import BENCHMARKS, data_dir

SHORT = ["--turns", "2", "--tokens-per-turn", "16", "--max-tokens", "24"]


def _data_or_skip(name):
    if BENCHMARKS.get(name).builtin is not None:
        return
    try:
        data_dir()
    except (FileNotFoundError, OSError) as e:
        pytest.skip(f"benchmark data not available: {e}")



@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def _eval(*args):
    return CliRunner().invoke(app, ["eval", *args])


def _text(res):
    return " ".join(res.output.split())  # rich wraps lines at the terminal width


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_eval_every_benchmark_end_to_end(tmp_path, cache, name):
    _data_or_skip(name)
    out = tmp_path / "out"
    res = _eval("--benchmark", name, "--limit", "2", "-n", "2", "-k", "1,2", *SHORT, "--out", str(out),
                "--cache-dir", cache)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == name and summary["eval/problems"] == 2
    assert 0.0 <= summary["eval/avg@n"] <= 1.0
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(items) == 2 * 2 + 2  # n samples per problem plus one greedy
    assert all({"id", "sample", "extracted", "score", "reason"} <= set(r) for r in items)
    if BENCHMARKS.get(name).scorer == "code":  # the random policy writes no working code: judged, not crashed
        assert summary["scorer"] == "code" and summary["eval/avg@n"] == 0.0
        assert {r["reason"] for r in items} <= {"no_answer", "failed"}
        assert all((r["extracted"] is None) == (r["reason"] == "no_answer") for r in items)
        assert all(r["code_form"] in ("none", "body", "function") and r["score"] == 0.0 for r in items)


def test_expert_workflow_from_yaml(tmp_path, cache):
    (tmp_path / "x.yaml").write_text("experts:\n  kind: oracle\n  replicas: 3\n")
    out = tmp_path / "out"
    res = _eval("--benchmark", "chain", "--limit", "2", "-n", "1", "-k", "1", *SHORT, "--experts",
                str(tmp_path / "x.yaml"), "--out", str(out), "--cache-dir", cache)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lock"] == "experts" and summary["experts"]["replicas"] == 3
    assert {"eval/expert_calls", "eval/expert_tokens", "eval/expert_calls_total"} <= set(summary)
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(items) == 4 and all(r["mode"] == "experts" and "expert_tokens" in r for r in items)


def test_bad_experts_file_is_a_clear_error(tmp_path, cache):
    (tmp_path / "x.yaml").write_text("experts:\n  kind: wizard\n")
    res = _eval("--benchmark", "chain", "--limit", "1", "--experts", str(tmp_path / "x.yaml"), "--cache-dir", cache)
    assert res.exit_code == 2 and "experts.kind" in _text(res)
    res = _eval("--benchmark", "chain", "--experts", str(tmp_path / "x.yaml"), "--lock", "refuse", "--cache-dir", cache)
    assert res.exit_code == 2 and "exclude each other" in _text(res)


def test_continue_and_refuse_a_changed_configuration(tmp_path, cache):
    out = tmp_path / "out"
    common = ["--benchmark", "chain", "-n", "2", "-k", "1,2", *SHORT, "--batch-size", "2", "--out", str(out),
              "--cache-dir", cache]
    assert _eval("--limit", "1", *common).exit_code == 0
    res = _eval("--limit", "2", *common)
    assert res.exit_code == 0, res.output
    assert "1 continued" in _text(res)
    assert json.loads((out / "summary.json").read_text())["eval/problems"] == 2
    res = _eval("--limit", "2", "--temperature", "0.5", *common)
    assert res.exit_code == 2 and "temperature: 1.0 -> 0.5" in _text(res)
    assert _eval("--limit", "2", "--temperature", "0.5", "--overwrite", *common).exit_code == 0
