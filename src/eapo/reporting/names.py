"""Metric names: one scheme, grouped by prefix, and the map from older names to it.

Every metric a run logs carries one of these prefixes, so TensorBoard, W&B and trackio
group them into panels and a reader can select a group by prefix:

    reward/    reward and its parts (mean, accuracy, well-formed share, zero-variance groups)
    expert/    consulting: consult rate, queries, acceptance, expert tokens and errors
    rollout/   episodes: turns, policy and observation tokens, completion lengths
    loss/      optimisation: policy loss, gradient norm, learning rate, entropy, clipping
    eval/      expert-free evaluation (eval_<lock>/ when both locks are evaluated)
    time/      wall time: step, rollout, generation, expert wait
    schedule/  the schedules' values at the step: rho_s, turn budget, penalty coefficient

TRL logs some metrics without a prefix (`loss`, `reward`, `frac_reward_zero_std`,
`step_time`, ...). The run's logging layer renames them with `canonical_name` before they
reach any back-end; TRL's own `trainer.state.log_history` keeps TRL's names. Run folders
written before the rename hold the old names: readers pass every key through
`canonical_name`, so old and new runs plot on the same axes.

No imports beyond the standard library: training and reporting both use this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["GROUPS", "RENAMED", "canonical_name", "canonical_row", "as_test_metrics"]

GROUPS = ("reward/", "expert/", "rollout/", "loss/", "eval/", "time/", "schedule/")

# Exact names (TRL's, transformers', and ours before the prefix scheme) -> canonical name.
RENAMED: dict[str, str] = {
    "loss": "loss/policy",
    "grad_norm": "loss/grad_norm",
    "learning_rate": "loss/learning_rate",
    "entropy": "loss/entropy",
    "kl": "loss/kl",
    "train_loss": "loss/train_mean",
    "reward": "reward/mean",
    "reward_std": "reward/std",
    "frac_reward_zero_std": "reward/frac_zero_std",
    "num_tokens": "rollout/num_tokens",
    "step_time": "time/step_s",
    "epoch": "time/epoch",
    "train_runtime": "time/train_runtime_s",
    "train_samples_per_second": "time/train_samples_per_s",
    "train_steps_per_second": "time/train_steps_per_s",
    "total_flos": "time/total_flos",
}

# Prefixes of families -> canonical prefix (the rest of the name is kept).
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("clip_ratio/", "loss/clip_ratio/"),
    ("completions/", "rollout/completions/"),
    ("rewards/", "reward/fn/"),  # TRL's per-reward-function statistics
    ("adaptive/", "schedule/adaptive/"),
)


def canonical_name(name: str) -> str:
    """The prefixed name of a metric; names already in the scheme are returned unchanged.

    >>> canonical_name("frac_reward_zero_std")
    'reward/frac_zero_std'
    >>> canonical_name("clip_ratio/low_mean")
    'loss/clip_ratio/low_mean'
    >>> canonical_name("expert/consult_rate")
    'expert/consult_rate'
    """
    if name in RENAMED:
        return RENAMED[name]
    for old, new in _PREFIXES:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def canonical_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A log row with canonical names. When an old and a new name meet (TRL's `reward` and
    our `reward/mean` are the same quantity), the name that was already canonical wins.

    >>> canonical_row({"step": 5, "reward": 0.25, "reward/mean": 0.3, "loss": 0.1})
    {'step': 5, 'reward/mean': 0.3, 'loss/policy': 0.1}
    """
    out: dict[str, Any] = {}
    for key, value in row.items():
        new = canonical_name(key)
        if new != key and new in row:
            continue  # a canonical twin is present: keep it, drop the old name
        out[new] = value
    return out


def as_test_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Final test metrics as published next to validation: `eval/avg@n` -> `eval/test/avg@n`
    (validation keeps `eval/avg@n`), so both can share one back-end without colliding.

    >>> as_test_metrics({"eval/avg@n": 0.5, "eval_forbid/pass@1": 0.4})
    {'eval/test/avg@n': 0.5, 'eval_forbid/test/pass@1': 0.4}
    """
    out = {}
    for key, value in metrics.items():
        head, sep, tail = key.partition("/")
        out[f"{head}/test/{tail}" if sep and head.startswith("eval") else key] = value
    return out
