"""Expert-free evaluation of a policy (EAPO.md §5): what EAPO is judged on.

Why the consult action is locked rather than merely unanswered: the method's claim is that
the skills learned with help stand without it, so no expert is ever called here (the
engine is built without a pool). Two locks, both reportable, because they answer different
questions:
  - "refuse" (rho = 0): the policy may still write a consultation; it gets the "expert
    unavailable" observation and the attempt is counted. This measures the asking habit
    and what it costs (turns spent waiting for help that never comes).
  - "forbid": the consult tag's opening tokens are banned in decoding (and the system
    prompt no longer offers experts), so the policy cannot spend its path on asking. This
    measures what the policy can do alone when the habit is taken away.
  - "both" runs the two and prefixes their metrics `eval_forbid/` and `eval_refuse/`
    instead of `eval/`.

Sampling (`eapo.evaluation.loop`, shared with `eapo eval` and the compare workflow row):
each problem is rolled out `n` times at `temperature` (for avg@n, pass@k and the
per-problem variance) and, with `greedy`, once more at temperature 0 (`greedy_acc`).
Episode uids are `eval-{problem.id}-{j}` and `eval-{problem.id}-greedy`, so with the same
seed, step and batch size an evaluation is reproducible, and the two locks draw with the
same seeds (common random numbers make their difference less noisy). Behaviour metrics
(consult attempts, turns, tokens, answered, well formed) are means over the sampled
episodes only; the greedy episode enters only `greedy_acc`.

Not here: the estimators (`eapo.evaluation.metrics`), benchmark datasets and scorers
beyond the registry's (the benchmarks layer), evaluation *with* experts
(`eapo.comparison.with_experts`, and `eapo eval --experts`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eapo.evaluation.loop import EvalLoop, default_backend, evaluating, run_record
from eapo.evaluation.metrics import episode_metrics, prefixed
from eapo.rollout.backend import GenerationBackend
from eapo.rollout.config import RolloutConfig
from eapo.types import Problem

log = logging.getLogger(__name__)

LOCKS = ("forbid", "refuse")
LOCK_CHOICES = (*LOCKS, "both")


@dataclass
class EvalResult:
    """`metrics`: flat `{name: value}` with the prefix `eval/` (or `eval_forbid/` and
    `eval_refuse/` for lock "both"). `records`: one dict per episode, sampled and greedy,
    in the order they were run."""

    metrics: dict[str, float]
    records: list[dict[str, Any]] = field(default_factory=list)


def _evaluate_lock(backend: GenerationBackend, tokenizer: Any, problems: Sequence[Problem], *, rollout: RolloutConfig,
                   lock: str, n: int, ks: Sequence[int], temperature: float, greedy: bool, turn_budget: int,
                   scorer: str, seed: int, batch_size: int, step: int) -> tuple[dict[str, float], list[dict[str, Any]]]:
    loop = EvalLoop(backend, tokenizer, rollout, consult_mode=lock, temperature=temperature, n=n, greedy=greedy,
                    turn_budget=turn_budget, batch_size=batch_size, seed=seed, step=step, scorer=scorer)
    records = [run_record(ep, lock, sample) for ep, sample in loop.roll(problems)]
    return episode_metrics(records, [p.id for p in problems], ks, id_key="problem_id"), records


def evaluate_policy(
    model: Any,
    tokenizer: Any,
    problems: Sequence[Problem],
    *,
    rollout: RolloutConfig,
    lock: str = "forbid",
    n: int = 4,
    ks: Sequence[int] = (1, 2, 4),
    temperature: float = 1.0,
    greedy: bool = True,
    turn_budget: int,
    scorer: str,
    seed: int = 0,
    batch_size: int = 64,
    step: int = 0,
    backend: GenerationBackend | None = None,
) -> EvalResult:
    """Evaluate `model` alone on `problems`: `n` sampled episodes per problem (plus one
    greedy with `greedy`), consult action locked by `lock` ("forbid", "refuse" or "both"),
    `turn_budget` turns each, in batches of `batch_size` episodes.

    `rollout` supplies tags, token limits and top-p; its `consult_mode` and `temperature`
    are replaced by `lock` and `temperature`. `backend` overrides the default
    `HFBackend(model, tokenizer)` (tests pass a scripted one; `model` may then be None).
    The model is in eval mode, without gradients, for the whole call, and its mode is
    restored afterwards. `step` only seeds sampling (pass the training step to vary it).
    """
    if lock not in LOCK_CHOICES:
        raise ValueError(f"lock must be one of {LOCK_CHOICES}, got {lock!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (samples per problem) must be an int >= 1, got {n!r}")
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n for k in ks):
        raise ValueError(f"ks must be ints in [1, n={n}] (pass@k needs n >= k samples), got {ks}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not problems:
        raise ValueError("evaluate_policy needs at least one problem")
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError("problem ids must be unique: episode uids and per-problem metrics are keyed on them")
    backend = default_backend(model, tokenizer, backend, "evaluate_policy")

    locks = LOCKS if lock == "both" else (lock,)
    metrics: dict[str, float] = {}
    records: list[dict[str, Any]] = []
    with evaluating(model):
        for lk in locks:
            m, r = _evaluate_lock(backend, tokenizer, problems, rollout=rollout, lock=lk, n=n, ks=ks,
                                  temperature=temperature, greedy=greedy, turn_budget=turn_budget, scorer=scorer,
                                  seed=seed, batch_size=batch_size, step=step)
            metrics.update(prefixed(m, lk, lock == "both"))
            records += r
            log.info("eval lock=%s problems=%d n=%d avg@n=%.4f %s", lk, len(problems), n, m["avg@n"],
                     " ".join(f"pass@{k}={m[f'pass@{k}']:.4f}" for k in ks))
    return EvalResult(metrics=metrics, records=records)
