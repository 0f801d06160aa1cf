"""The paper-setting examples (examples/paper/) load as training configs and say what the
paper's setting is: DAPO-Math-17k scored by math-verify, K = 3, turn budget 10, acceptance
1/s for the GPU configs, an expert pool of OpenAI-compatible endpoints (three replicas of one
32B model for the 7B policy, one expert for the one-GPU variant), expert-free evaluation on
AIME. Loading checks every key, `rl.trl` against TRL's GRPOConfig included. The commands
in each file's header are checked to name the same files and settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eapo.config import load_config
from eapo.training.config import TrainConfig

PAPER = Path(__file__).resolve().parents[2] / "examples" / "paper"


def load(name: str) -> TrainConfig:
    return load_config(TrainConfig, PAPER / name)


@pytest.mark.parametrize("name, policy, members, expert", [
    ("r1_7b_qwq32b_x3.yaml", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 3, "qwq-32b"),
    ("r1_1p5b_one_gpu.yaml", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1, "r1-7b"),
    ("tiny_cpu.yaml", None, 3, "tiny-expert"),
])
def test_the_paper_setting(name, policy, members, expert):
    cfg = load(name)
    assert (cfg.task.name, cfg.task.data, cfg.task.scorer) == ("dataset", "dapo_math", "math")
    assert (cfg.task.val_data, cfg.task.test_data) == ("aime2024", "aime2025")
    assert cfg.rollout.max_queries == 3 and cfg.turn_budget.train == 10 and cfg.rollout.tags.allow_boxed
    assert cfg.model.policy == policy and cfg.rl.arm == "eapo"
    assert cfg.experts.kind == "pool" and cfg.experts.routing == "mod"
    assert [m.type for m in cfg.experts.members] == ["openai"] * members
    assert {m.model for m in cfg.experts.members} == {expert}
    assert len({m.name for m in cfg.experts.members}) == members
    if policy is not None:
        assert cfg.acceptance.kind == "inverse" and cfg.acceptance.start == 1.0
        assert cfg.rollout.system_prompt is None and cfg.task.train_size is None
        # one optimiser step per generation batch: P x G = micro-batch x accumulation x processes
        procs = 8 if "7b" in name else 1
        t = cfg.rl.trl
        assert cfg.rl.prompts_per_step * cfg.rl.num_generations == (
            t["per_device_train_batch_size"] * t["gradient_accumulation_steps"] * procs)
        tags = 12  # `<expert id="i">`, `</expert>` and the newlines around a round of replies, about
        assert cfg.rollout.max_completion_tokens >= cfg.rollout.max_policy_tokens + 3 * (cfg.rollout.max_reply_tokens + tags)
    else:
        assert cfg.warmstart.steps == 0  # the tiny policy: no chain warm start for a dataset


@pytest.mark.parametrize("name", ["r1_7b_qwq32b_x3.yaml", "r1_1p5b_one_gpu.yaml", "tiny_cpu.yaml"])
def test_header_commands_match_the_file(name):
    text = (PAPER / name).read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    cfg = load(name)
    assert f"eapo train examples/paper/{name} --arms eapo --out {cfg.output_dir}" in " ".join(header.split())
    assert f"--model {cfg.output_dir}/eapo/final -n" in header
    ports = {re.search(r":(\d+)/v1", m.base_url).group(1) for m in cfg.experts.members}
    served = {m.model for m in cfg.experts.members}
    for port in ports:
        assert f"--port {port}" in header, port
    for model in served:
        assert f"--served-model-name {model}" in header, model
