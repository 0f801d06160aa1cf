"""The expert pool of an `experts:` section, for a training run and for an evaluation.

`build_pool` is the pool of a training run: none for self-exploratory RL; for the simple
kinds (oracle, noisy, model, homogeneous) `experts.replicas` copies; for experts.kind
"pool" (`build_member_pool`) the configured `members`: OpenAI-compatible endpoints
(`eapo.experts.openai_expert`) and local experts side by side, each with its prices,
sharing one reply cache, and each call bounded as a whole by `experts.timeout_s` (the
endpoint's own retries happen inside that deadline). Weights become repetition: a member
of weight w holds w of the pool's slots, interleaved by smooth weighted round robin, so
every routing rule of the pool protocol (mod, round_robin, random) honours them without
knowing about weights, and the K queries of one turn still reach distinct members where
it can.

`build_workflow_pool` is the same pool for `eapo eval --experts` (the expert-assisted
workflow baseline, EAPO.md §6), so an evaluation consults exactly the experts a run
trained with. Which oracle answers there: on the built-in task (`--benchmark chain`) the
task's own oracle, which answers the sub-questions the policy asks; on a file benchmark
the oracle replies with the problem's gold answer (for code, the canonical body),
whatever the question.

The pool's accounting in the training log rows is `eapo.training.callbacks.PoolMetrics`.
Moved here from `eapo.training.run`, `eapo.training.expert_pool` and
`eapo.evaluation.workflow` (issue 18); their old names forward here for one release.
"""

from __future__ import annotations

import logging
from typing import Any

from eapo.evaluation.benchmarks import BenchmarkSpec, builtin_task
from eapo.experts import ExpertPool, HFModelExpert, NoisyExpert, OracleExpert
from eapo.experts.base import Expert
from eapo.experts.messages import DEFAULT_SYSTEM_PROMPT
from eapo.experts.openai_expert import BreakerPolicy, OpenAIExpert, RetryPolicy
from eapo.experts.oracle import gold_answer
from eapo.experts.pool import Prices
from eapo.experts.reply_cache import ReplyCache
from eapo.schema import ExpertMemberConfig, ExpertsConfig, TrainConfig
from eapo.types import ExpertRequest

log = logging.getLogger(__name__)

__all__ = ["build_member", "build_member_pool", "build_pool", "build_workflow_pool", "weighted_order"]


def build_pool(cfg: TrainConfig, task: Any, initial_policy: str) -> ExpertPool | None:
    """The expert pool of the run, or None when consulting is off (self-exploratory RL)."""
    e = cfg.experts
    if cfg.rl.arm != "eapo":
        return None
    if e.kind == "pool":  # endpoints and local experts with weights
        return build_member_pool(cfg, task, initial_policy)
    if e.kind == "oracle":
        base = [OracleExpert(task.oracle_answer, name="oracle")]
    elif e.kind in ("model", "homogeneous"):
        path = initial_policy if e.kind == "homogeneous" else e.model
        if not path:
            raise ValueError("experts.kind 'model' needs experts.model (a model folder or hub id)")
        base = [HFModelExpert(path, name=f"{e.kind}-{i}", max_new_tokens=e.max_new_tokens,
                              temperature=e.temperature, seed=cfg.seed + i) for i in range(e.replicas)]
    elif e.kind == "noisy":
        base = [OracleExpert(task.oracle_answer, name="oracle")]
    else:  # validated by the config; kept for a clear error if a new kind is half-added
        raise ValueError(f"unknown experts.kind {e.kind!r}")
    if e.noise_p > 0 or e.kind == "noisy":
        base = [NoisyExpert(m, p=e.noise_p, seed=cfg.seed + i) for i, m in enumerate(base)]
    members = base * max(1, e.replicas) if e.kind in ("oracle", "noisy") else base
    return ExpertPool(members, routing=e.routing, timeout_s=e.timeout_s, seed=cfg.seed)


def weighted_order(weights: list[int]) -> list[int]:
    """Member indices, each i repeated weights[i] times, spread as evenly as possible
    (nginx's smooth weighted round robin, deterministic).

    >>> weighted_order([2, 1])
    [0, 1, 0]
    >>> weighted_order([1, 1, 1])
    [0, 1, 2]
    >>> weighted_order([3, 1])
    [0, 0, 1, 0]
    """
    if not weights or any(w < 1 for w in weights):
        raise ValueError(f"weights must be ints >= 1, got {weights}")
    total = sum(weights)
    current = [0] * len(weights)
    out = []
    for _ in range(total):
        for i, w in enumerate(weights):
            current[i] += w
        best = max(range(len(weights)), key=lambda i: (current[i], -i))
        current[best] -= total
        out.append(best)
    return out


def build_member(m: ExpertMemberConfig, index: int, cfg: TrainConfig, task: Any, initial_policy: str,
                 cache: ReplyCache | None) -> Expert:
    """One configured member; `index` (its place in the list) offsets its seed."""
    seed = cfg.seed + index
    if m.type == "openai":
        assert m.base_url is not None and m.model is not None  # the config checked it
        expert: Expert = OpenAIExpert(
            m.base_url, m.model, name=m.name, api_key_env=m.api_key_env,
            system_prompt=DEFAULT_SYSTEM_PROMPT if m.system_prompt is None else m.system_prompt,
            temperature=m.temperature, top_p=m.top_p, max_tokens=m.max_tokens, max_tokens_param=m.max_tokens_param,
            seed=seed if m.send_seed else None, extra_body=m.extra_body, timeout_s=m.timeout_s,
            deadline_s=cfg.experts.timeout_s,
            retry=RetryPolicy(retries=m.retries, backoff_s=m.backoff_s, backoff_max_s=m.backoff_max_s,
                              max_retry_after_s=m.max_retry_after_s),
            breaker=BreakerPolicy(failures=m.breaker_failures, cooldown_s=m.breaker_cooldown_s),
            max_concurrency=m.max_concurrency, max_reply_chars=m.max_reply_chars,
            max_response_bytes=m.max_response_bytes, cache=cache)
    elif m.type in ("oracle", "noisy"):
        expert = OracleExpert(task.oracle_answer, name=m.name or "oracle")
    elif m.type in ("model", "homogeneous"):
        path = initial_policy if m.type == "homogeneous" else m.model
        assert path is not None
        expert = HFModelExpert(path, name=m.name or f"{m.type}-{index}", max_new_tokens=m.max_tokens,
                               temperature=m.temperature, top_p=m.top_p, seed=seed,
                               **({"system_prompt": m.system_prompt} if m.system_prompt is not None else {}))
    else:  # validated by the config; kept for a clear error if a new type is half-added
        raise ValueError(f"unknown expert member type {m.type!r}")
    if m.noise_p > 0:
        expert = NoisyExpert(expert, p=m.noise_p, seed=seed)
    return expert


def build_member_pool(cfg: TrainConfig, task: Any, initial_policy: str) -> ExpertPool:
    """The pool of experts.kind "pool" (see the module docstring)."""
    e = cfg.experts
    cache = ReplyCache(e.cache_dir) if e.cache_dir else None
    built = [build_member(m, i, cfg, task, initial_policy, cache) for i, m in enumerate(e.members)]
    prices = [Prices(m.price_prompt_per_mtok, m.price_completion_per_mtok) for m in e.members]
    order = weighted_order([m.weight for m in e.members])
    log.info("expert pool: %s (routing %s)", ", ".join(f"{x!r} x{m.weight}" for x, m in zip(built, e.members)),
             e.routing)
    return ExpertPool([built[i] for i in order], routing=e.routing, timeout_s=e.timeout_s, seed=cfg.seed,
                      prices=[prices[i] for i in order])


class _GoldOracle:
    """A task-shaped object for `build_pool` whose oracle replies with the gold answer."""

    def oracle_answer(self, request: ExpertRequest) -> str:
        return gold_answer(request)


def build_workflow_pool(experts: ExpertsConfig, spec: BenchmarkSpec, *, policy: str, seed: int) -> ExpertPool:
    """The expert pool for an evaluation of `policy` on `spec`'s problems.

    `policy` is also the frozen copy a "homogeneous" pool consults."""
    task = builtin_task(spec.builtin) if spec.builtin is not None else _GoldOracle()
    # The run's arm must be "eapo" (build_pool returns no pool for self-exploratory RL);
    # every section but `experts` and `seed` keeps its default and is unused.
    pool = build_pool(TrainConfig(seed=seed, experts=experts), task, policy)
    if pool is None:  # pragma: no cover - guarded by the arm above
        raise ValueError("the experts configuration gave no expert pool")
    return pool
