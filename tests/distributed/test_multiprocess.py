"""EAPO on TRL across two CPU processes (`accelerate launch`, gloo), against one process.

Equivalence: the worker's policy generation is scripted and deterministic per context, so
the rollouts depend only on the acceptance coins, which are keyed on global episode ids.
The global batch (3 groups of 4) splits 6/6 over two processes, so the middle group
straddles them: its advantages need TRL's reward gather, and its episodes need global
copy numbers (otherwise rank 1 would reuse rank 0's coins and the rewards would differ).
What is compared:

- the logged metrics of each step are equal (they are computed over the same gathered
  episodes); TRL's loss agrees to float32 rounding;
- the parameters after 2 optimiser steps agree to 1e-3 of the update's norm and 1e-4
  absolute (lr 1e-3): the two runs sum the same per-token terms in a different order
  (two half-batches, then gloo's all-reduce of gradients, instead of one batch), which
  moves gradients by ~1e-7 relative; Adam divides by sqrt(v), so components with
  near-zero gradient amplify that. Measured: 1.1e-5 relative, 2e-6 absolute;
- every expert request was sent by exactly one process, and together they are the single
  process's requests.

The CLI test runs `eapo train --num-processes 2` with the real tiny policy sampling.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eapo.distributed.launch import accelerate_command
from eapo.models.build import TinyModelSpec, build_tiny_model

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    spec = TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=64)
    return str(build_tiny_model(tmp_path_factory.mktemp("m") / "policy", spec))


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _metrics(run_dir: Path) -> dict[int, dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows if "rollout/episodes" in r}


def _params(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_two_processes_train_like_one_on_the_same_global_batch(tiny, tmp_path):
    sys.path.insert(0, str(HERE))
    try:
        import ddp_worker
    finally:
        sys.path.remove(str(HERE))
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    ddp_worker.main(tiny, one)  # the reference, in this process

    cmd = accelerate_command(2, [], port=None)[:-2]  # drop "-m eapo.cli.main": run the worker file
    proc = subprocess.run([*cmd, str(HERE / "ddp_worker.py"), tiny, str(two)], env=_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]

    m1, m2 = _metrics(one / "run"), _metrics(two / "run")
    assert sorted(m1) == sorted(m2) == [1, 2]
    for step in (1, 2):
        assert m2[step]["rollout/episodes"] == 12  # both processes' episodes, not rank 0's 6
        for key, value in m1[step].items():  # EAPO's metrics and the pool's accounting, over both processes
            if key.startswith(("reward/", "expert/", "rollout/", "schedule/")) and "latency" not in key:
                assert m2[step][key] == pytest.approx(value, rel=1e-6, abs=1e-7), (step, key)
        assert m2[step]["expert/pool/calls"] == m1[step]["expert/pool/calls"] > 0
        loss = next(k for k in m1[step] if k in ("loss", "loss/policy"))
        assert m2[step][loss] == pytest.approx(m1[step][loss], rel=1e-4, abs=1e-7)
    # the coins vary inside groups (else there would be no gradient to compare)
    assert 0 < m1[1]["expert/acceptance_rate"] < 1

    start, p1, p2 = _params(Path(tiny)), _params(one / "run" / "final"), _params(two / "run" / "final")
    diff = sum(((p1[k] - start[k]) - (p2[k] - start[k])).pow(2).sum() for k in start).sqrt()
    update = sum((p1[k] - start[k]).pow(2).sum() for k in start).sqrt()
    assert update > 0.01
    assert diff / update < 1e-3
    assert max((p1[k] - p2[k]).abs().max().item() for k in start) < 1e-4

    calls0 = json.loads((two / "calls-rank0.json").read_text())
    calls1 = json.loads((two / "calls-rank1.json").read_text())
    single = json.loads((one / "calls-rank0.json").read_text())
    assert calls0 and calls1 and not set(calls0) & set(calls1)  # spread, not duplicated
    assert sorted(calls0 + calls1) == sorted(single)
    # one dump per step, written once, with every process's episodes
    for step in (1, 2):
        lines = (two / "run" / "rollouts" / f"rollouts-step{step:06d}.jsonl").read_text().splitlines()
        assert len(lines) == 12 and len({json.loads(x)["uid"] for x in lines}) == 12
    assert not list((two / "run").glob("calls*"))


def test_eapo_train_num_processes_relaunches_through_accelerate(tiny, tmp_path):
    out = tmp_path / "run"
    sets = [
        "rl.steps=2", "rl.prompts_per_step=2", "rl.num_generations=2", "rl.save_steps=2", "rl.log_steps=1",
        "eval.every_steps=0", "eval.val_size=2", "task.val_size=2", "task.test_size=2", "eval.n=1", "eval.k=[1]",
        "rollout.tokens_per_turn=8", "rollout.max_policy_tokens=24", "rollout.max_completion_tokens=64",
        "turn_budget.train=3", "turn_budget.eval=2", "task.train_size=8", "rl.dump_rollouts_every=1",
    ]
    args = [sys.executable, "-m", "eapo.cli.main", "train", "--num-processes", "2", "--arms", "eapo",
            "--model", tiny, "--out", str(out), *[x for s in sets for x in ("--set", s)]]
    proc = subprocess.run(args, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("Expert-free test accuracy") == 1  # printed by the main process only
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_processes"] == 2 and set(summary["rows"]) == {"base", "eapo"}
    metrics = _metrics(out / "eapo")
    assert sorted(metrics) == [1, 2] and all(r["rollout/episodes"] == 4 for r in metrics.values())
    assert (out / "eapo" / "test.json").exists() and (out / "eapo" / "final").exists()
    assert len((out / "eapo" / "rollouts" / "rollouts-step000001.jsonl").read_text().splitlines()) == 4

