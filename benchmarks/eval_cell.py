"""Re-evaluate a trained `eapo compare` / `eapo train` cell another way (issue 4 diagnostics).

Why: the comparison evaluates each cell once, expert-free with the consult tag forbidden.
To tell "the policy got worse" from "the policy got worse *in this context*", the same
final weights are evaluated under another lock, another turn budget, or WITH the experts
(rho = 1, as the workflow row is). docs/notebook/2026-11-27-issue4-stop12-stronger-help.md
(issue 4, stop 12; and stop 13) uses it.

    .venv/bin/python benchmarks/eval_cell.py runs/compare-step05/eapo/seed-0 --with-experts
    .venv/bin/python benchmarks/eval_cell.py runs/compare-step05/eapo/seed-0 --lock refuse --turns 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cell", type=Path, help="a run folder with config.yaml (or a compare cell with cell_config.yaml) and final/")
    ap.add_argument("--model", type=Path, default=None, help="weights to evaluate (default: CELL/final)")
    ap.add_argument("--lock", choices=("forbid", "refuse", "both"), default=None, help="expert-free lock (default: the cell's)")
    ap.add_argument("--turns", type=int, default=None, help="evaluation turn budget (default: the cell's)")
    ap.add_argument("--with-experts", action="store_true", help="evaluate with the cell's experts, every reply accepted")
    a = ap.parse_args()

    from eapo.config import load_yaml
    from eapo.models.build import load_policy
    from eapo.training.config import TrainConfig
    from eapo.assembly.pool import build_pool
    from eapo.assembly.run import build_task, with_task_settings
    from eapo.training.run import evaluate_expert_free

    cfg_file = a.cell / "config.yaml" if (a.cell / "config.yaml").exists() else a.cell / "cell_config.yaml"
    cfg = load_yaml(TrainConfig, cfg_file)
    if a.lock:
        cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, lock=a.lock))
    if a.turns:
        tb = cfg.turn_budget
        cfg = dataclasses.replace(cfg, turn_budget=dataclasses.replace(tb, train=max(a.turns, tb.train), eval=a.turns))
    task = build_task(cfg)
    cfg = with_task_settings(cfg, task)
    model_dir = str(a.model or a.cell / "final")
    model, tok = load_policy(model_dir)
    test = task.split("test")[: cfg.eval.test_size]
    if a.with_experts:
        from eapo.comparison.workflow import evaluate_with_experts

        cfg = dataclasses.replace(cfg, rl=dataclasses.replace(cfg.rl, arm="eapo"))
        metrics, _ = evaluate_with_experts(cfg, model, tok, test, build_pool(cfg, task, model_dir), task.scorer)
    else:
        metrics = evaluate_expert_free(cfg, model, tok, test, task.scorer).metrics
    keys = ("eval/avg@n", "eval/greedy_acc", "eval/consult_attempts", "eval/expert_calls", "eval/well_formed")
    print(json.dumps({"cell": str(a.cell), "model": model_dir, "with_experts": a.with_experts, "lock": cfg.eval.lock,
                      "turns": cfg.turn_budget.eval, **{k: round(metrics[k], 4) for k in keys if k in metrics}}))


if __name__ == "__main__":
    main()
