"""The test-time evaluation of `eapo compare`'s workflow row: the policy keeps its experts.

Why a separate evaluation: every other row is judged expert-free (EAPO.md §5); this one
answers "what if we never withdraw the help and pay for experts at test time?", so the
consult action is open, every reply is accepted (rho = 1), and the expert calls and
tokens it spends are reported next to its accuracy. It runs the evaluation loop of the
expert-free evaluation (`eapo.evaluation.loop`), with the same episode uids (common random
numbers), so its numbers are comparable row for row.

Not here: the pool (the run's, `build_pool`), `eapo eval --experts` (the same evaluation
of a benchmark, `eapo.evaluation.bench_eval`).
"""

from __future__ import annotations

import logging
from typing import Any

from eapo.evaluation.loop import EvalLoop, default_backend, evaluating, run_record
from eapo.evaluation.metrics import episode_metrics, prefixed
from eapo.schedules.step import acceptance_gate
from eapo.types import Problem

log = logging.getLogger(__name__)


def evaluate_with_experts(cfg: Any, model: Any, tokenizer: Any, problems: list[Problem], pool: Any, scorer: str, *,
                          backend: Any = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """`eval/`-prefixed metrics (the expert-free names, plus expert calls and tokens per
    episode) and per-episode records of `model` consulting `pool` with every reply accepted.

    `cfg` is the run's `TrainConfig`: its eval section gives n, k, temperature and greedy;
    its rollout section the protocol (K, token limits); the turn budget is the training
    schedule's opening budget (`turn_budget.train`), the most help a policy was ever given."""
    e = cfg.eval
    backend = default_backend(model, tokenizer, backend, "evaluate_with_experts")
    gate = acceptance_gate(cfg.acceptance, cfg.seed)
    with evaluating(model):
        loop = EvalLoop(backend, tokenizer, cfg.rollout, consult_mode="open", temperature=e.temperature, n=e.n,
                        greedy=e.greedy, turn_budget=int(cfg.turn_budget.train), batch_size=64, seed=cfg.seed,
                        pool=pool, gate=gate, scorer=scorer)
        records = [run_record(ep, "open", sample) for ep, sample in loop.roll(problems)]
    m = episode_metrics(records, [p.id for p in problems], tuple(e.k), id_key="problem_id",
                        expert_calls="accepted_calls")
    log.info("workflow eval (experts open, rho=1) problems=%d n=%d avg@n=%.4f expert calls/episode=%.2f",
             len(problems), e.n, m["avg@n"], m["expert_calls"])
    return prefixed(m, "open", False), records
