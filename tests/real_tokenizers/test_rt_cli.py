"""`eapo rollout --policy DIR` and one `eapo train` step with `--model DIR`: a random-init
Qwen2-architecture model with the real Qwen2 tokenizer, through the command line.

Measured before the fix: `eapo rollout --policy` with this tokenizer built prompts whose
system turn was the template's default ("You are a helpful assistant"): the protocol text
was never in them. A given policy now gets it by default, through both commands."""

from __future__ import annotations

import json

import yaml
from transformers import AutoTokenizer
from typer.testing import CliRunner

from eapo.cli.main import app
from eapo.protocol.prompt import DEFAULT_SYSTEM_PROMPT, NO_CONSULT_SYSTEM_PROMPT, system_text
from eapo.protocol.tags import Tags
from eapo.rollout.dump import validate_file

PROTOCOL = system_text(DEFAULT_SYSTEM_PROMPT, Tags(), 3)


def records(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def check_records(recs, tok, system: str | None):
    for rec in recs:
        prompt = tok.decode(rec["prompt_ids"])
        assert "You are a helpful assistant" not in prompt
        assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
        if system is not None:
            assert system in prompt
        policy = [t for t, m in zip(rec["completion_ids"], rec["loss_mask"]) if m]
        assert tok.decode(policy, skip_special_tokens=False) == rec["policy_text"]


def test_rollout_with_a_given_policy_carries_the_protocol(qwen2_policy, tmp_path):
    out = tmp_path / "r.jsonl"
    res = CliRunner().invoke(app, ["rollout", "--policy", str(qwen2_policy), "--out", str(out), "--n", "2",
                                   "--turns", "2", "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    assert validate_file(out) == 2
    tok = AutoTokenizer.from_pretrained(records(out)[0]["tokenizer_path"])
    check_records(records(out), tok, PROTOCOL)
    assert not (tmp_path / "cache").exists()  # a given policy with the oracle builds no tiny models

    # ... unless it is turned off (then the template's own default is what the model sees)
    off = tmp_path / "off.jsonl"
    res = CliRunner().invoke(app, ["rollout", "--policy", str(qwen2_policy), "--out", str(off), "--n", "1",
                                   "--turns", "1", "--no-system-prompt"])
    assert res.exit_code == 0, res.output
    assert "You are a helpful assistant" in tok.decode(records(off)[0]["prompt_ids"])


TINY = [
    "rl.steps=1", "rl.prompts_per_step=1", "rl.num_generations=2", "rl.save_steps=1", "rl.log_steps=1",
    "rl.dump_rollouts_every=1", "eval.every_steps=0", "eval.val_size=1", "task.val_size=1", "task.test_size=1",
    "task.train_size=2", "eval.n=1", "eval.k=[1]", "rollout.tokens_per_turn=8", "rollout.max_policy_tokens=16",
    "rollout.max_completion_tokens=64", "turn_budget.train=2", "turn_budget.eval=1",
]


def test_one_train_step_with_a_given_model(qwen2_policy, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--model", str(qwen2_policy), "--out", str(out), "--arms", "eapo"]
    res = CliRunner().invoke(app, [*args, *[x for s in TINY for x in ("--set", s)]])
    assert res.exit_code == 0, res.output
    saved = yaml.safe_load((out / "eapo" / "config.yaml").read_text())
    assert saved["rollout"]["system_prompt"] is None  # resolved: the protocol's text
    dump = out / "eapo" / "rollouts" / "rollouts-step000001.jsonl"
    assert validate_file(dump) == 2
    tok = AutoTokenizer.from_pretrained(qwen2_policy)
    check_records(records(dump), tok, PROTOCOL)
    rows = [json.loads(x) for x in (out / "eapo" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 1 and "loss/policy" in rows[0]  # TRL took its step
    assert (out / "eapo" / "test.json").exists()
    # the expert-free evaluation locks consulting and says so in its own system text
    test = records(out / "eapo" / "test_records.jsonl")
    assert test and all(NO_CONSULT_SYSTEM_PROMPT.split(".")[0] in tok.decode(r["prompt_ids"]) for r in test
                        if "prompt_ids" in r)
