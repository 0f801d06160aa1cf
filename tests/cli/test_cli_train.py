"""`eapo train` from the command line: a tiny two-arm run prints its table and leaves the
run directories; bad configuration stops with exit code 2 and names the key."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eapo.cli.main import app

TINY = [
    "warmstart.steps=0", "rl.steps=2", "rl.prompts_per_step=2", "rl.num_generations=2", "rl.save_steps=2",
    "rl.log_steps=1", "eval.every_steps=0", "eval.val_size=2", "task.val_size=2", "task.test_size=3", "eval.n=2",
    "eval.k=[1,2]", "rollout.tokens_per_turn=8", "rollout.max_policy_tokens=24", "rollout.max_completion_tokens=64",
    "turn_budget.train=3", "turn_budget.eval=2", "task.train_size=8",
]


def sets(*items: str) -> list[str]:
    return [x for item in items for x in ("--set", item)]


@pytest.mark.slow
def test_train_runs_both_arms_and_prints_the_table(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), *sets(*TINY)])
    assert res.exit_code == 0, res.output
    for label in ("base", "self-RL", "EAPO"):
        assert label in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["rows"]) == {"base", "self_rl", "eapo"}
    for arm in ("self_rl", "eapo"):
        assert (out / arm / "test.json").exists() and (out / arm / "metrics.jsonl").exists()
        assert (out / arm / "config.yaml").read_text().count(f"arm: {arm}") == 1
    # self-exploratory RL never consults: the consult tag cannot even be generated
    rows = [json.loads(x) for x in (out / "self_rl" / "metrics.jsonl").read_text().splitlines()]
    assert all(r.get("expert/queries", 0) == 0 for r in rows)
    # a second call reuses finished arms instead of training again
    again = CliRunner().invoke(app, ["train", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), *sets(*TINY)])
    assert again.exit_code == 0, again.output
    assert "nan" in again.output  # reused arms report no wall time


@pytest.mark.slow
def test_resume_finishes_an_interrupted_comparison(tmp_path):
    out = tmp_path / "run"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    first = CliRunner().invoke(app, ["train", "--out", str(out), "--arms", "self_rl", *cache, *sets(*TINY)])
    assert first.exit_code == 0, first.output  # as if stopped after the first arm
    res = CliRunner().invoke(app, ["train", "--resume", str(out), *cache])
    assert res.exit_code == 0, res.output
    assert (out / "eapo" / "test.json").exists()
    assert json.loads((out / "summary.json").read_text())["rows"].keys() == {"base", "self_rl", "eapo"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (sets("rl.stpes=3"), "rl.steps"),
        (sets("experts.kind=wizard"), "experts.kind"),
        (sets("acceptance.kind=sometimes"), "acceptance"),
        (["--arms", "eapo,sft"], "unknown arm"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path, args, fragment):
    res = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "x"), *args])
    assert res.exit_code == 2
    assert fragment in res.output


def test_missing_config_file_is_reported(tmp_path):
    res = CliRunner().invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "nope.yaml" in res.output
