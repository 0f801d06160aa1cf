"""Calibrate the built-in chain task: warm-start a tiny policy, then measure on a held-out
"hard" split what RL will face (docs/TASK.md has the results and the reasoning).

For each candidate (policy size, warm-start config) it reports, on the hard split:
- expert-free accuracy, sampled (temperature 1) and greedy, with the consult tag forbidden
  in decoding (RolloutConfig(consult_mode="forbid"));
- accuracy with the oracle expert open (consult_mode="open", rho = 1), sampled and greedy,
  and consultations per episode;
- greedy expert-free accuracy per chain length over lengths 1..max (the length cliff);
- the wall time of one rollout batch of 64 episodes (sampled, help open) and of the warm start.

Run (2 shared cores: keep it niced):
    nice .venv/bin/python benchmarks/calibrate_task.py --candidates default --hard 5 6 --n 200
Results are appended as JSON lines to --out (default /tmp/eapo-calibration.jsonl).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import time
from pathlib import Path

import torch

from eapo.experts.oracle import OracleExpert
from eapo.experts.pool import ExpertPool
from eapo.models.build import POLICY_SPEC, TinyModelSpec, ensure_tiny_models, load_policy
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.hf_backend import HFBackend
from eapo.tasks.arithmetic import ChainTask
from eapo.training.warmstart import WarmStartConfig, warm_start

_STEP = re.compile(r"(\d+)([+-])(\d+)=(\d+)")
SPECS = {
    "p0.4M": POLICY_SPEC,  # h128 L2
    "p0.8M": TinyModelSpec(hidden_size=128, num_hidden_layers=4, intermediate_size=384),
    "p0.6M": TinyModelSpec(hidden_size=128, num_hidden_layers=3, intermediate_size=384),
    "p1.6M": TinyModelSpec(hidden_size=192, num_hidden_layers=4, num_attention_heads=6, num_key_value_heads=2,
                           intermediate_size=576),
}
# name -> (spec name, WarmStartConfig)
CANDIDATES = {
    "default": ("p0.4M", WarmStartConfig()),
    "s300": ("p0.4M", WarmStartConfig(steps=300)),
    "s1200": ("p0.4M", WarmStartConfig(steps=1200)),
    "b32": ("p0.4M", WarmStartConfig(batch_size=32)),
    "b32-c50": ("p0.4M", WarmStartConfig(batch_size=32, consult_prob=0.5)),
    "b32-L8": ("p0.4M", WarmStartConfig(batch_size=32, max_len=8)),
    "p0.8M-b32": ("p0.8M", WarmStartConfig(batch_size=32)),
    "p0.8M": ("p0.8M", WarmStartConfig()),
    "p0.6M": ("p0.6M", WarmStartConfig()),
    "p1.6M-b32": ("p1.6M", WarmStartConfig(batch_size=32)),
}


def rollout_config(mode: str, temperature: float, max_len: int) -> RolloutConfig:
    return RolloutConfig(system_prompt="", consult_mode=mode, max_queries=1, temperature=temperature,
                         tokens_per_turn=160, max_policy_tokens=256, max_completion_tokens=512)


def measure(model, tok, task: ChainTask, problems, mode: str, temperature: float, seed: int = 0) -> dict:
    max_len = max(p.meta["length"] for p in problems)
    pool = ExpertPool([OracleExpert(task.oracle_answer)]) if mode == "open" else None
    engine = RolloutEngine(HFBackend(model, tok), tok, rollout_config(mode, temperature, max_len), pool=pool, seed=seed)
    t0 = time.perf_counter()
    eps = []
    for i in range(0, len(problems), 64):
        eps += engine.run(problems[i:i + 64], step=i, rhos=1.0 if mode == "open" else 0.0, turn_budget=max_len + 3)
    n = len(eps)
    by_len: dict[int, list[float]] = {}
    for p, ep in zip(problems, eps):
        by_len.setdefault(p.meta["length"], []).append(ep.score)
    helped = [ep for ep in eps if ep.consults]
    # step accuracy: the policy's own written steps `a op b = r`, checked on their own terms
    right = total = 0
    for ep in eps:
        policy = tok.decode([t for t, m in zip(ep.completion_ids, ep.loss_mask) if m], skip_special_tokens=True)
        for a, op, b, r in _STEP.findall(policy):
            total += 1
            right += (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(r)
    return {
        "acc": sum(ep.score for ep in eps) / n,
        "acc_by_len": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_len.items())},
        "consults_per_ep": sum(ep.consults for ep in eps) / n,
        "share_consulting": len(helped) / n,
        "acc_when_consulting": (sum(ep.score for ep in helped) / len(helped)) if helped else None,
        "step_acc": round(right / total, 3) if total else None,
        "answered": sum(ep.answer is not None for ep in eps) / n,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def evaluate(path: Path, task_hard: ChainTask, n: int, all_max: int) -> dict:
    model, tok = load_policy(path)
    hard = task_hard.split("test")[:n]
    out = {}
    for name, mode, temp in (("free_sampled", "forbid", 1.0), ("free_greedy", "forbid", 0.0),
                             ("help_sampled", "open", 1.0), ("help_greedy", "open", 0.0)):
        out[name] = measure(model, tok, task_hard, hard, mode, temp)
        logging.info("%s: %s", name, out[name])
    # the length cliff: greedy, expert-free, every length
    every = ChainTask(min_len=1, max_len=all_max, sizes=(("train", 1), ("val", 1), ("test", 40 * all_max))).split("test")
    out["free_greedy_all_lengths"] = measure(model, tok, task_hard, every, "forbid", 0.0)["acc_by_len"]
    # one RL-sized rollout batch: 8 prompts x 8 completions, sampled, help open
    batch = [p for p in hard[:8] for _ in range(8)]
    t0 = time.perf_counter()
    measure(model, tok, task_hard, batch, "open", 1.0)
    out["batch64_help_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    measure(model, tok, task_hard, batch, "forbid", 1.0)
    out["batch64_free_s"] = round(time.perf_counter() - t0, 2)
    out["params"] = model.num_parameters()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", nargs="+", default=["default"], help=f"names among {list(CANDIDATES)}")
    ap.add_argument("--hard", nargs=2, type=int, default=[5, 6], metavar=("MIN", "MAX"), help="hard split lengths")
    ap.add_argument("--n", type=int, default=200, help="hard test problems")
    ap.add_argument("--cache", default="/tmp/eapo-calibration", help="models and warm starts go here")
    ap.add_argument("--out", default="/tmp/eapo-calibration.jsonl")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for name in ("httpx", "transformers", "datasets"):
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    hard_task = ChainTask(min_len=args.hard[0], max_len=args.hard[1])
    for cand in args.candidates:
        spec_name, cfg = CANDIDATES[cand]
        policy = ensure_tiny_models(args.cache, policy=SPECS[spec_name])["policy"]
        t0 = time.perf_counter()
        path = warm_start(policy, Path(args.cache) / "warmstarts", hard_task, cfg)
        ws_s = round(time.perf_counter() - t0, 1)
        record = json.loads((path / "eapo_warmstart.json").read_text())
        res = evaluate(path, hard_task, args.n, max(cfg.max_len, args.hard[1]) + 1)
        row = {"candidate": cand, "spec": spec_name, "cfg": dataclasses.asdict(cfg), "hard": args.hard,
               "n": args.n, "warm_start_s": record.get("train_seconds"), "call_s": ws_s,
               "final_loss": record.get("final_logged_loss"), **res}
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
