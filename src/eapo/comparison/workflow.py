"""The expert-assisted workflow baseline: the policy keeps its experts at inference.

Why a separate evaluation: every other row is judged expert-free (EAPO.md §5); this one
answers "what if we never withdraw the help and pay for experts at test time?", so the
consult action is open, every reply is accepted (rho = 1), and the expert calls and
tokens it spends are reported next to its accuracy. It runs the same rollout engine and
estimators as the expert-free evaluation, with the same episode uids (common random
numbers), so its numbers are comparable row for row.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from eapo.evaluation.metrics import mean, summarize
from eapo.rollout.engine import RolloutEngine
from eapo.schedules.gate import AcceptanceGate
from eapo.types import Episode, Problem

log = logging.getLogger(__name__)


def _record(ep: Episode, sample: int | None) -> dict[str, Any]:
    return {
        "lock": "open", "uid": ep.uid, "problem_id": ep.problem_id, "sample": sample, "greedy": sample is None,
        "answer": ep.answer, "gold": ep.gold, "score": ep.score, "reward": ep.reward, "well_formed": ep.well_formed,
        "consults": ep.consults, "queries": len(ep.calls), "accepted_calls": ep.accepted_calls,
        "expert_tokens": sum(c.completion_tokens for c in ep.calls if c.accepted),
        "turns": len(ep.turns), "policy_tokens": ep.policy_tokens, "stop_reason": ep.stop_reason,
    }


def evaluate_with_experts(cfg: Any, model: Any, tokenizer: Any, problems: list[Problem], pool: Any, scorer: str, *,
                          backend: Any = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """`eval/`-prefixed metrics (the expert-free names, plus expert calls and tokens per
    episode) and per-episode records of `model` consulting `pool` with every reply accepted.

    `cfg` is the run's `TrainConfig`: its eval section gives n, k, temperature and greedy;
    its rollout section the protocol (K, token limits); the turn budget is the training
    schedule's opening budget (`turn_budget.train`), the most help a policy was ever given."""
    e = cfg.eval
    if backend is None:
        from eapo.rollout.hf_backend import HFBackend

        backend = HFBackend(model, tokenizer)
    turn_budget = int(cfg.turn_budget.train)
    rollout = dataclasses.replace(cfg.rollout, consult_mode="open", temperature=e.temperature)
    gate = AcceptanceGate(seed=cfg.seed, granularity=cfg.acceptance.granularity)

    def roll(engine: RolloutEngine, jobs: list[tuple[Problem, str]]) -> list[Episode]:
        out: list[Episode] = []
        for start in range(0, len(jobs), 64):
            chunk = jobs[start : start + 64]
            out += engine.run([p for p, _ in chunk], step=0, uids=[u for _, u in chunk], rhos=1.0,
                              turn_budget=turn_budget)
        return out

    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    try:
        with torch.no_grad():
            engine = RolloutEngine(backend, tokenizer, rollout, pool=pool, gate=gate, scorer=scorer, seed=cfg.seed)
            sampled = roll(engine, [(p, f"eval-{p.id}-{j}") for p in problems for j in range(e.n)])
            greedy_eps: list[Episode] = []
            if e.greedy:
                g_engine = RolloutEngine(backend, tokenizer, dataclasses.replace(rollout, temperature=0.0), pool=pool,
                                         gate=gate, scorer=scorer, seed=cfg.seed)
                greedy_eps = roll(g_engine, [(p, f"eval-{p.id}-greedy") for p in problems])
    finally:
        if was_training is not None:
            model.train(was_training)

    records = [_record(ep, j % e.n) for j, ep in enumerate(sampled)] + [_record(ep, None) for ep in greedy_eps]
    scores: dict[str, list[float]] = {p.id: [] for p in problems}
    for ep in sampled:
        scores[ep.problem_id].append(ep.score)
    m = summarize(scores, tuple(e.k))
    m.update({
        "consult_attempts": mean([ep.consults for ep in sampled]),
        "consult_rate": mean([float(ep.consults > 0) for ep in sampled]),
        "expert_calls": mean([float(ep.accepted_calls) for ep in sampled]),
        "expert_tokens": mean([float(r["expert_tokens"]) for r in records if not r["greedy"]]),
        "turns": mean([len(ep.turns) for ep in sampled]),
        "policy_tokens": mean([ep.policy_tokens for ep in sampled]),
        "answered": mean([float(ep.stop_reason == "answer") for ep in sampled]),
        "well_formed": mean([float(ep.well_formed) for ep in sampled]),
    })
    if greedy_eps:
        m["greedy_acc"] = mean([ep.score for ep in greedy_eps])
    log.info("workflow eval (experts open, rho=1) problems=%d n=%d avg@n=%.4f expert calls/episode=%.2f",
             len(problems), e.n, m["avg@n"], m["expert_calls"])
    return {f"eval/{k}": float(v) for k, v in m.items()}, records
