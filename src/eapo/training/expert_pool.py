"""A configured expert pool (experts.kind "pool") and its accounting in the run's metrics.

`build_member_pool` turns `ExpertsConfig.members` into an `ExpertPool`: OpenAI-compatible
endpoints (`eapo.experts.openai_expert`) and local experts side by side, each with its
prices, sharing one reply cache, and each call bounded as a whole by `experts.timeout_s`
(the endpoint's own retries happen inside that deadline). Weights become repetition: a
member of weight w holds w of the pool's slots, interleaved by smooth weighted round
robin, so every routing rule of the pool protocol (mod, round_robin, random) honours them
without knowing about weights, and the K queries of one turn still reach distinct members
where it can.

`PoolMetrics` puts the pool's accounting into every training log row, under
`expert/pool/` (the `expert/` metric group): calls, failures by cause, retries, latency
percentiles, tokens and estimated cost since the previous row, and `expert/pool/total_*`
running totals for the run so far. It must be added to the trainer before the callback
that writes the metrics, because it adds to the row that callback writes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from transformers import TrainerCallback

from eapo.experts import ExpertPool, HFModelExpert, NoisyExpert, OracleExpert, pool_metrics
from eapo.experts.base import Expert
from eapo.experts.messages import DEFAULT_SYSTEM_PROMPT
from eapo.experts.openai_expert import BreakerPolicy, OpenAIExpert, RetryPolicy
from eapo.experts.pool import Prices
from eapo.experts.reply_cache import ReplyCache
from eapo.training.config import ExpertMemberConfig, TrainConfig

log = logging.getLogger(__name__)

__all__ = ["METRICS_PREFIX", "PoolMetrics", "build_member", "build_member_pool", "weighted_order"]

METRICS_PREFIX = "expert/pool"
_TOTALS = ("calls", "failures", "retries", "prompt_tokens", "completion_tokens", "cost_usd", "cache_hits")


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


class PoolMetrics(TrainerCallback):
    """Adds the pool's accounting to each log row (see the module docstring)."""

    def __init__(self, pool: ExpertPool, prefix: str = METRICS_PREFIX) -> None:
        self.pool = pool
        self.prefix = prefix
        self.totals: dict[str, float] = defaultdict(float)

    def on_log(self, args, state, control, logs=None, **kw):
        if logs is None:
            return
        stats = self.pool.snapshot_and_reset()
        if not any(s.calls for s in stats) and "train_runtime" in logs:
            return  # the closing summary row: nothing new to account for
        metrics = pool_metrics(stats, prefix=self.prefix)
        for key in _TOTALS:
            self.totals[key] += metrics.get(f"{self.prefix}/{key}", 0.0)
            metrics[f"{self.prefix}/total_{key}"] = self.totals[key]
        logs.update(metrics)
