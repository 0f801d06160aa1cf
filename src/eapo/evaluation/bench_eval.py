"""`eapo eval`: a policy on a registered benchmark (or the user's JSON Lines), expert-free.

The benchmark's problems go through the same rollout engine as training (the prompt is
rendered with the model's chat template once, later turns are token ids), with the
consult action locked (EAPO.md §5), and each answer is scored by the benchmark's scorer.
Math benchmarks also accept a final `\\boxed{}` as the answer. Output: `items.jsonl` (one
line per sample) and `summary.json` (avg@n, unbiased pass@k, variance, behaviour).

Not yet here: code benchmarks (the policy's program must run in the sandbox, see
`eapo score --scorer code`), the expert-assisted workflow baseline, resuming an
interrupted evaluation.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from eapo.evaluation.benchmarks import load_benchmark, resolve_spec
from eapo.evaluation.evaluate import EvalResult, evaluate_policy
from eapo.rollout.config import RolloutConfig


def evaluate_benchmark(model: Any, tokenizer: Any, benchmark: str, *, n: int, ks: tuple[int, ...], limit: int | None,
                       rollout: RolloutConfig, lock: str = "forbid", temperature: float = 1.0, greedy: bool = True,
                       turn_budget: int = 4, seed: int = 0, out: Path | None = None) -> EvalResult:
    spec = resolve_spec(benchmark)
    if spec.scorer == "code":
        raise ValueError(f"{spec.name}: code benchmarks are scored by running programs; generate completions and use "
                         "`eapo score --scorer code` (eval does not run them yet)")
    problems = load_benchmark(benchmark, limit=limit)
    tags = dataclasses.replace(rollout.tags, allow_boxed=spec.template_family == "math_boxed")
    result = evaluate_policy(model, tokenizer, problems, rollout=dataclasses.replace(rollout, tags=tags), lock=lock, n=n,
                             ks=ks, temperature=temperature, greedy=greedy, turn_budget=turn_budget, scorer=spec.scorer,
                             seed=seed)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with (out / "items.jsonl").open("w", encoding="utf-8") as f:
            for rec in result.records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        summary = {"benchmark": spec.name, "scorer": spec.scorer, "lock": lock, **result.metrics}
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result
