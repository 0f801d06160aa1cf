"""A short real run for the report tests, made once per session through the real writers.

`train_from_config` trains a 1-layer model for 3 steps on TRL with a scripted policy (so episodes
consult, get replies accepted and refused, answer right and wrong), TensorBoard on, every
step's rollouts dumped, validation every 2 steps. Beside it: a copy of that run in the
metric names of older runs (as folders written before the prefix scheme hold them), a
base evaluation, and a results.json in the shape `eapo compare` writes (one entry per row,
each metric with per-seed values, mean and std).
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import pytest

from eapo.reporting.names import RENAMED

STEPS = 3


def scripted_policy(model, tok):
    """Per episode (keyed on its question and sample): some answer at once, the others
    consult with two queries and then answer right or wrong."""
    from eapo.rollout.fake_backend import ScriptedBackend
    from eapo.tasks.arithmetic import evaluate_chain

    count = {"n": 0}

    def script(ctx, call):
        text = tok.decode(ctx)
        question = text.split("user\n")[-1].split("<|im_end|>")[0]
        done = text.split("<|im_start|>assistant\n")[-1]
        count["n"] += 1  # copies of a problem get the same context: vary them by a counter
        h = zlib.crc32(f"{question}|{count['n']}".encode())
        right = f" <answer>{evaluate_chain(question)}</answer>"
        wrong = f" <answer>{evaluate_chain(question) + 1}</answer>"
        if "<expert" not in done and "unavailable" not in done:
            if h % 3 == 0:
                return tok.encode(right if h % 2 else wrong, add_special_tokens=False)
            return tok.encode(f"ok <consult><query>{question}</query><query>1+1</query></consult>",
                              add_special_tokens=False)
        return tok.encode(right if h % 2 else wrong, add_special_tokens=False)

    return ScriptedBackend(script, (tok.eos_token_id,))


TRAIN = [
    f"rl.steps={STEPS}", "rl.prompts_per_step=2", "rl.num_generations=4", f"rl.save_steps={STEPS}",
    "rl.log_steps=1", "eval.every_steps=2", "eval.val_size=2", "task.val_size=2", "task.test_size=2",
    "task.train_size=16", "eval.n=1", "eval.k=[1]", "eval.greedy=false", "rl.dump_rollouts_every=1",
    "rollout.tokens_per_turn=32", "task.min_len=1", "task.max_len=3", "rollout.max_policy_tokens=40",
    "rollout.max_completion_tokens=160", "turn_budget.train=3", "turn_budget.eval=1", "acceptance.kind=constant", "acceptance.value=0.5", "acceptance.granularity=reply",
    "logging.backends=[tensorboard]",
]


def results_json() -> dict:
    def m(*values: float) -> dict:
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        return {"values": list(values), "mean": mean, "std": sd}

    return {"seeds": [0, 1], "rows": [
        {"name": "self_rl", "metrics": {"eval/avg@n": m(0.30, 0.34), "eval/pass@1": m(0.30, 0.34),
                                        "expert_tokens": m(0, 0)}},
        {"name": "eapo_parallel", "metrics": {"eval/avg@n": m(0.41, 0.45), "eval/pass@1": m(0.41, 0.45),
                                              "expert_tokens": m(1200, 1300)}},
    ]}


@pytest.fixture(scope="session")
def report_runs(tmp_path_factory) -> Path:
    """cmp/eapo (a new run), cmp/old (the same files under old metric names), cmp/base,
    cmp/results.json."""
    from eapo.config import load_config
    from eapo.models.build import TinyModelSpec, build_tiny_model
    from eapo.training.config import TrainConfig
    from eapo.assembly.run import train_from_config

    root = tmp_path_factory.mktemp("report")
    spec = TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=64)
    policy = str(build_tiny_model(root / "policy", spec))
    cmp = root / "cmp"
    cfg = load_config(TrainConfig, None, TRAIN)
    train_from_config(cfg, cmp / "eapo", policy_path=policy, backend_factory=scripted_policy)

    old = cmp / "old"
    old.mkdir()
    back = {new: old_name for old_name, new in RENAMED.items()}
    rows = [json.loads(x) for x in (cmp / "eapo" / "metrics.jsonl").read_text().splitlines()]
    old_rows = [{back.get(k, k): v for k, v in r.items() if not k.startswith("eval")} for r in rows]
    (old / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old_rows))
    for name in ("val.jsonl", "test.json", "config.yaml"):
        shutil.copy(cmp / "eapo" / name, old / name)
    (cmp / "base").mkdir()
    shutil.copy(cmp / "eapo" / "test.json", cmp / "base" / "test.json")
    (cmp / "results.json").write_text(json.dumps(results_json()))
    return cmp
