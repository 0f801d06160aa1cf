"""The one evaluation loop: each problem rolled out `n` times, and once greedily, by the engine.

Why one loop: the training-time evaluation (`eapo.evaluation.evaluate`), `eapo eval`
(`eapo.evaluation.bench_eval`) and the test-time evaluation of `eapo compare`'s workflow
row (`eapo.comparison.with_experts`) must draw the same episodes for the same problems,
seed and lock, so that their numbers compare row for row (common random numbers). What
makes an episode is therefore fixed here, once:
  - uids `eval-{problem.id}-{j}` for sample j and `eval-{problem.id}-greedy`;
  - order: every sampled episode (problem by problem, samples in order), then the greedy
    ones; batches of `batch_size` episodes are cut from that list. The engine seeds a
    generation call from (seed, step, turn, first uid of the batch), so the cut is part
    of the result;
  - the greedy episodes come from the same engine settings, pool and gate at temperature 0;
  - rho: an evaluation applies no schedule, so an open consult action accepts every reply
    (rho = 1) and a locked one none (rho = 0).
The callers differ only in what they pass (lock or pool, gate, scorer) and in how they
score, record and summarise what comes back.

Not here: scoring beyond the engine's (`eapo.evaluation.records`), summaries
(`eapo.evaluation.metrics.episode_metrics`), resuming (`bench_eval`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch

from eapo.rollout.backend import GenerationBackend
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.schedules.gate import AcceptanceGate
from eapo.types import Episode, Problem


def default_backend(model: Any, tokenizer: Any, backend: GenerationBackend | None, caller: str) -> GenerationBackend:
    """`backend`, or the policy's own `HFBackend(model, tokenizer)`: tests and vLLM pass one,
    and `model` may then be None."""
    if backend is not None:
        return backend
    if model is None:
        raise ValueError(f"{caller} needs a model, or a backend to generate with")
    from eapo.rollout.hf_backend import HFBackend

    return HFBackend(model, tokenizer)


@contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """Eval mode and no gradients for the block; a training model is put back in its mode
    afterwards, also when the block fails (the evaluation runs inside a training run)."""
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training is not None:
            model.train(was_training)


class Rolled(NamedTuple):
    episode: Episode
    sample: int | None
    """j of the sampled episodes, None for the greedy one."""


class EvalLoop:
    """The engines of one evaluation mode, built once and rolled block by block."""

    def __init__(self, backend: GenerationBackend, tokenizer: Any, rollout: RolloutConfig, *, consult_mode: str,
                 temperature: float, n: int, greedy: bool, turn_budget: int, batch_size: int, seed: int,
                 step: int = 0, pool: Any = None, gate: AcceptanceGate | None = None, scorer: str = "exact") -> None:
        """`rollout` gives tags, token limits and top-p; its consult mode and temperature are
        replaced. `step` only varies the sampling seeds."""
        cfg = dataclasses.replace(rollout, consult_mode=consult_mode, temperature=temperature)
        self.n, self.turn_budget, self.batch_size, self.step = n, turn_budget, batch_size, step
        self.rho = 1.0 if consult_mode == "open" else 0.0
        self.sampled = RolloutEngine(backend, tokenizer, cfg, pool=pool, gate=gate, scorer=scorer, seed=seed)
        self.greedy = (RolloutEngine(backend, tokenizer, dataclasses.replace(cfg, temperature=0.0), pool=pool,
                                     gate=gate, scorer=scorer, seed=seed) if greedy else None)

    def roll(self, problems: Sequence[Problem]) -> list[Rolled]:
        """The `n` sampled episodes of every problem, then (with greedy) the greedy ones."""
        out = [Rolled(ep, j % self.n) for j, ep in enumerate(self._run(
            self.sampled, [(p, f"eval-{p.id}-{j}") for p in problems for j in range(self.n)]))]
        if self.greedy is not None:
            out += [Rolled(ep, None) for ep in self._run(self.greedy, [(p, f"eval-{p.id}-greedy") for p in problems])]
        return out

    def _run(self, engine: RolloutEngine, jobs: list[tuple[Problem, str]]) -> list[Episode]:
        episodes: list[Episode] = []
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            episodes += engine.run([p for p, _ in chunk], step=self.step, uids=[u for _, u in chunk], rhos=self.rho,
                                   turn_budget=self.turn_budget)
        return episodes


def run_record(ep: Episode, lock: str, sample: int | None) -> dict[str, Any]:
    """One line of a run's `<name>_records.jsonl` (the training-time evaluation and the
    compare cells), scored by the engine. With experts open (`lock` "open") it also holds
    `expert_tokens`: the completion tokens of accepted replies, what a training run counts as
    expert cost, so a compare row spending experts at test time sits on the same axis.
    `eapo eval`'s items are another format (`eapo.evaluation.records.episode_record`)."""
    return {
        "lock": lock, "uid": ep.uid, "problem_id": ep.problem_id, "sample": sample, "greedy": sample is None,
        "answer": ep.answer, "gold": ep.gold, "score": ep.score, "reward": ep.reward, "well_formed": ep.well_formed,
        "consults": ep.consults, "queries": len(ep.calls), "accepted_calls": ep.accepted_calls,
        **({"expert_tokens": sum(c.completion_tokens for c in ep.calls if c.accepted)} if lock == "open" else {}),
        "turns": len(ep.turns), "policy_tokens": ep.policy_tokens, "stop_reason": ep.stop_reason,
    }
