"""`eapo train --data`: a user's JSON Lines file becomes the task (splits, scorer, boxed
answers for a math scorer) and trains; a wrong path or the tiny policy's chain-only warm
start stop with exit code 2 before any model loads, saying what to change."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from eapo.cli.main import app

TINY = [
    "warmstart.steps=0", "rl.steps=1", "rl.prompts_per_step=2", "rl.num_generations=2", "rl.save_steps=1",
    "rl.log_steps=1", "eval.every_steps=0", "eval.val_size=2", "eval.n=1", "eval.k=[1]", "eval.greedy=false",
    "task.train_size=null", "task.val_size=2", "task.test_size=2", "task.scorer=math", "rollout.tokens_per_turn=8",
    "rollout.max_policy_tokens=16", "rollout.max_completion_tokens=48", "turn_budget.train=2", "turn_budget.eval=1",
]


def sets(*items: str) -> list[str]:
    return [x for item in items for x in ("--set", item)]


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "sums.jsonl"
    path.write_text("".join(json.dumps({"id": f"s{i}", "question": f"{i}+{i}=?", "answer": str(2 * i)}) + "\n"
                            for i in range(10)))
    return path


@pytest.mark.slow
def test_train_on_a_jsonl_file(tmp_path, data):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--data", str(data), "--arms", "eapo", "--out", str(out),
                                   "--cache-dir", str(tmp_path / "cache"), *sets(*TINY)])
    assert res.exit_code == 0, res.output
    assert "Expert-free test accuracy (%), 2 problems" in res.output
    cfg = yaml.safe_load((out / "eapo" / "config.yaml").read_text())
    assert cfg["task"]["name"] == "dataset" and cfg["task"]["data"] == str(data)
    assert cfg["rollout"]["tags"]["allow_boxed"] is True  # scored by math: a final \boxed{} answers
    records = [json.loads(x) for x in (out / "eapo" / "test_records.jsonl").read_text().splitlines()]
    assert {r["problem_id"] for r in records} <= {f"s{i}" for i in range(10)} and len(records) == 2


@pytest.mark.parametrize("args, fragment", [
    (["--data", "no/such/file.jsonl", "--set", "warmstart.steps=0"], "not found"),
    (["--data", "no_such_set", "--set", "warmstart.steps=0"], "unknown benchmark 'no_such_set'"),
    (["--data", "DATA"], "warm start teaches the chain task only"),
    (["--data", "DATA", "--set", "warmstart.steps=0", "--set", "task.train_size=50"], "has 10 usable problems"),
])
def test_bad_data_stops_before_training(tmp_path, data, args, fragment):
    args = [str(data) if a == "DATA" else a for a in args]
    res = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "run"), *args,
                                   "--set", "task.val_size=2", "--set", "task.test_size=2", "--set", "eval.val_size=2"])
    assert res.exit_code == 2, res.output
    assert fragment in " ".join(res.output.split())
    assert not (tmp_path / "run").exists()
