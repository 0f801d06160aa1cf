"""EAPO inside TRL's GRPOTrainer, end to end on a tiny model (CPU, a few steps each).

What must hold through TRL's whole training step: observation (expert) tokens get exactly
zero gradient while policy tokens get some; the reward TRL optimises is the rollout's,
read from policy tokens; the schedules inside the rollout follow the trainer's global step;
a run stopped and resumed continues the uninterrupted one."""

from __future__ import annotations

import json

import pytest
import torch

from eapo.config import load_config
from eapo.models.build import TinyModelSpec, build_tiny_model
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.training.checkpoints import MARKER, complete_checkpoints
from eapo.training.config import TrainConfig
from eapo.assembly.run import train_from_config

pytestmark = pytest.mark.slow

BASE = [
    "rl.steps=4", "rl.prompts_per_step=2", "rl.num_generations=4", "rl.save_steps=2", "rl.log_steps=1",
    "rl.learning_rate=1e-3", "eval.every_steps=0", "eval.val_size=4", "task.val_size=4", "task.test_size=4",
    "task.train_size=16", "eval.n=2", "eval.k=[1,2]", "rl.dump_rollouts_every=2", "rollout.tokens_per_turn=32",
    "task.min_len=1", "task.max_len=3", "warmstart.min_len=1",
    "rollout.max_policy_tokens=64", "rollout.max_completion_tokens=128", "turn_budget.train=4", "turn_budget.eval=2",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    spec = TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=64)
    return str(build_tiny_model(tmp_path_factory.mktemp("m") / "policy", spec))


def cfg_with(*extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, [*BASE, *extra])


def mixed_policy(model, tok):
    """Consults the whole question, then half the group answers the gold and half writes only
    a closing tag: the expert's reply holds the gold either way."""
    from eapo.tasks.arithmetic import evaluate_chain

    def script(ctx, call):
        text = tok.decode(ctx)
        question = text.split("user\n")[-1].split("<|im_end|>")[0]
        done = text.split("<|im_start|>assistant\n")[-1]
        if "<expert" not in done and "unavailable" not in done:
            return tok.encode(f"ok <consult><query>{question}</query></consult>", add_special_tokens=False)
        good = len(ctx) % 2 == 0
        return tok.encode(f" <answer>{evaluate_chain(question)}</answer>" if good else " x</answer>",
                          add_special_tokens=False)

    backend = ScriptedBackend(script, (tok.eos_token_id,))
    calls = {"n": 0}
    inner = backend.script

    def varied(ctx, call):  # make the group differ: alternate rows by a counter
        calls["n"] += 1
        return inner(ctx + ([0] if calls["n"] % 2 else []), call)

    backend.script = varied
    return backend


def test_expert_tokens_get_exactly_zero_gradient_through_a_trl_step(tiny, tmp_path, monkeypatch):
    """Through TRL's whole step, d loss / d logp(token) is exactly 0 on every observation
    token and on padding, and not 0 on policy tokens (the group's rewards differ)."""
    from eapo.training import rollout_func as rf

    captured: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(module, args, kwargs, output):
        logps = getattr(output, "log_probs", None)
        if torch.is_grad_enabled() and logps is not None and logps.requires_grad:
            logps.retain_grad()
            captured.append((kwargs["input_ids"], logps))

    seen = []
    real_call = rf.EAPORollout.__call__

    def spy(self, prompts, trainer):
        model = trainer.accelerator.unwrap_model(trainer.model)
        if not seen:
            model.register_forward_hook(hook, with_kwargs=True)
        out = real_call(self, prompts, trainer)
        seen.append((self.last_episodes, out))
        return out

    monkeypatch.setattr(rf.EAPORollout, "__call__", spy)
    cfg = cfg_with("rl.steps=1", "rl.prompts_per_step=1", "task.train_size=1", "acceptance.kind=constant")
    train_from_config(cfg, tmp_path / "run", policy_path=tiny, backend_factory=mixed_policy)
    [(episodes, out)] = seen
    assert out["env_mask"] == [ep.loss_mask for ep in episodes]
    assert out["eapo_reward"] == [ep.reward for ep in episodes]
    for ep in episodes:  # every episode was handed the gold by the expert ...
        assert ep.observation_tokens > 0 and any(c.accepted and c.reply == ep.gold for c in ep.calls)
        # ... and is credited only when the policy itself wrote it
        assert ep.reward == (1.0 if ep.answer == ep.gold else 0.0)
    assert {ep.reward for ep in episodes} == {0.0, 1.0}

    [(input_ids, logps)] = captured
    grad = logps.grad
    assert grad is not None
    policy_grad_seen = False
    for row in range(input_ids.shape[0]):
        ids = input_ids[row].tolist()
        ep, start = _locate(ids, episodes)  # rows are shuffled by TRL: find each by its ids
        assert grad.shape[1] == len(ids) - 1  # shifted: entry t-1 is the log-prob of token t
        comp = grad[row, start - 1 : start - 1 + len(ep.completion_ids)]
        mask = torch.tensor(ep.loss_mask, dtype=torch.bool)
        assert torch.all(comp[~mask] == 0), "an observation token received gradient"
        assert torch.all(grad[row, start - 1 + len(ep.completion_ids) :] == 0), "padding received gradient"
        policy_grad_seen |= bool(torch.any(comp[mask] != 0))
    assert policy_grad_seen


def _locate(ids: list[int], episodes) -> tuple:
    """The episode whose prompt+completion sits in this padded row, and where its completion starts."""
    for ep in episodes:
        seq = ep.prompt_ids + ep.completion_ids
        for start in range(0, len(ids) - len(seq) + 1):
            if ids[start : start + len(seq)] == seq:
                return ep, start + len(ep.prompt_ids)
    raise AssertionError("a batch row matches no episode")


def read_metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_schedules_follow_the_global_step_and_resume_matches(tiny, tmp_path):
    cfg = cfg_with("acceptance.kind=linear", "acceptance.start=1.0", "acceptance.end=0.0")
    full = tmp_path / "full"
    train_from_config(cfg, full, policy_path=tiny)
    rows = {r["step"]: r for r in read_metrics(full) if "schedule/rho" in r}
    assert [round(rows[s]["schedule/rho"], 6) for s in (1, 2, 3, 4)] == [1.0, round(2 / 3, 6), round(1 / 3, 6), 0.0]
    assert [rows[s]["schedule/turn_budget"] for s in (1, 2, 3, 4)] == [4.0, 3.0, 3.0, 2.0]

    part = tmp_path / "part"
    r = train_from_config(cfg, part, policy_path=tiny, stop_at_step=2)
    assert r.test == {}
    assert [p.name for p in complete_checkpoints(part)] == ["checkpoint-2"]
    # a checkpoint cut off half-written is never picked
    (part / "checkpoint-3").mkdir()
    (part / "checkpoint-3" / "trainer_state.json").write_text("{")
    train_from_config(cfg, part, policy_path=tiny, resume=True)
    resumed = {r["step"]: r for r in read_metrics(part) if "schedule/rho" in r}
    for s in (1, 2, 3, 4):
        for key in ("schedule/rho", "schedule/turn_budget", "reward/mean", "loss/policy", "rollout/policy_tokens",
                    "expert/acceptance_rate"):
            assert resumed[s][key] == pytest.approx(rows[s][key], rel=1e-5, abs=1e-6), (s, key)
    assert json.loads((part / "test.json").read_text()) == pytest.approx(json.loads((full / "test.json").read_text()))
    assert (part / "checkpoint-4" / MARKER).exists()


def test_resume_refuses_a_run_without_complete_checkpoints(tiny, tmp_path):
    from eapo.training.checkpoints import CheckpointError

    (tmp_path / "run" / "checkpoint-2").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        train_from_config(cfg_with(), tmp_path / "run", policy_path=tiny, resume=True)


def test_lora_trains_only_adapters(tiny, tmp_path):
    cfg = cfg_with("rl.steps=1", "model.lora=true", "model.lora_r=4", "rl.save_steps=1")
    result = train_from_config(cfg, tmp_path / "run", policy_path=tiny)
    assert (tmp_path / "run" / "final" / "adapter_config.json").exists()
    assert set(result.test) >= {"eval/avg@n", "eval/pass@1"}
