"""A training step with EAPO rollouts against TRL's plain single-turn GRPO step.

Same tiny policy, same prompts, same batch (prompts x generations), same learning settings;
both run in this process one after the other. The EAPO arm consults the oracle expert with
rho = 1 (K = 3, turn budget 4), so its completions also carry observation tokens. Policy
tokens per step differ between the arms (the multi-turn policy stops on tags), so the ratio
is printed per step and per policy token. Target: EAPO / plain <= 1.3 per policy token.

    .venv/bin/python benchmarks/trl_step_overhead.py [--steps 8] [--policy PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def plain_grpo(policy: str, prompts: list[str], steps: int, batch: int, gens: int, max_len: int, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from eapo.models.build import load_policy

    model, tok = load_policy(policy)
    args = GRPOConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch * gens,
                      num_generations=gens, max_completion_length=max_len, learning_rate=1e-5, loss_type="dapo",
                      epsilon_high=0.28, beta=0.0, report_to="none", use_cpu=not torch.cuda.is_available(),
                      bf16=False, gradient_checkpointing=False, logging_steps=1, save_strategy="no", seed=0,
                      disable_tqdm=True)
    seen: list[float] = []

    def reward(completions, completion_ids, **kw):
        seen.append(sum(len(c) for c in completion_ids))
        return [float(len(c) % 2) for c in completions]

    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args,
                          train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tok)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "step_time" in h]
    return {"step_s": [h["step_time"] for h in logs], "policy_tokens": seen}


def eapo_grpo(policy: str, steps: int, batch: int, gens: int, out: Path, overrides: list[str]) -> dict:
    from eapo.config import load_config
    from eapo.training.config import TrainConfig
    from eapo.assembly.run import train_from_config

    cfg = load_config(TrainConfig, None, [
        f"rl.steps={steps}", f"rl.prompts_per_step={batch}", f"rl.num_generations={gens}", "rl.save_steps=1000",
        "rl.log_steps=1", "rl.learning_rate=1e-5", "eval.every_steps=0", "task.test_size=1", "task.val_size=1",
        "eval.val_size=1", "eval.n=1", "eval.k=[1]", "eval.greedy=false", "rl.dump_rollouts_every=0",
        "acceptance.kind=constant", "turn_budget.train=4", "turn_budget.eval=4", *overrides])
    train_from_config(cfg, out, policy_path=policy)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "time/step_s" in r]  # TRL's step_time, renamed by the run's logger
    return {"step_s": [r["time/step_s"] for r in rows],
            "policy_tokens": [r["rollout/policy_tokens"] * batch * gens for r in rows],
            "generation_s": [r["time/generation_s"] for r in rows],
            "expert_s": [r["time/expert_wait_s"] for r in rows],
            "rollout_s": [r["time/rollout_s"] for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--policy", default=None, help="policy folder (default: the tiny policy)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--gens", type=int, default=4)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override for the EAPO arm")
    a = ap.parse_args()
    from eapo.models.build import ensure_tiny_models
    from eapo.tasks.arithmetic import ChainTask

    policy = a.policy or str(ensure_tiny_models()["policy"])
    prompts = [p.question for p in ChainTask().split("train")]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        e = eapo_grpo(policy, a.steps, a.batch, a.gens, Path(tmp) / "eapo", a.overrides)
        max_len = int(statistics.mean(e["policy_tokens"][1:]) / (a.batch * a.gens)) or 1
        p = plain_grpo(policy, prompts, a.steps, a.batch, a.gens, max_len, Path(tmp) / "plain")
        wall = time.time() - t0
    skip = 1  # the first step pays for warm-up in both arms
    es, ps = statistics.mean(e["step_s"][skip:]), statistics.mean(p["step_s"][skip:])
    et, pt = statistics.mean(e["policy_tokens"][skip:]), statistics.mean(p["policy_tokens"][skip:])
    print(f"policy {policy}; {a.batch} prompts x {a.gens} generations; {a.steps} steps (first skipped); wall {wall:.0f} s")
    print(f"plain TRL GRPO : {ps:.3f} s/step, {pt:.0f} policy tokens/step, {1000 * ps / pt:.2f} ms/token")
    print(f"EAPO on TRL    : {es:.3f} s/step, {et:.0f} policy tokens/step, {1000 * es / et:.2f} ms/token")
    print(f"  breakdown    : rollout {statistics.mean(e['rollout_s'][skip:]):.3f} s "
          f"(generation {statistics.mean(e['generation_s'][skip:]):.3f} s, expert wait "
          f"{statistics.mean(e['expert_s'][skip:]):.4f} s), update {es - statistics.mean(e['rollout_s'][skip:]):.3f} s")
    print(f"  padded width : EAPO batches are padded to their longest episode (policy + observation tokens)")
    print(f"ratio EAPO / plain: {es / ps:.2f} per step, {(es / et) / (ps / pt):.2f} per policy token")


if __name__ == "__main__":
    main()
