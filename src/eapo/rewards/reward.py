"""The composite reward of EAPO.md §3, computed from what the policy itself wrote.

`R = score` if the score is positive, `format_reward` (0.1) for a well-formed wrong
answer, 0 otherwise; minus the consultation penalty, whose rule (successful completions
only, by default) lives with its schedule in `eapo.schedules.penalty`.
"""

from __future__ import annotations

from eapo.schedules.penalty import consult_penalty
from eapo.schema.reward import RewardConfig  # re-export: the section lives in eapo.schema


def composite_reward(
    score: float,
    well_formed: bool,
    consults: int,
    penalty_coef: float,
    penalty_apply_to: str = "success",
    cfg: RewardConfig = RewardConfig(),
) -> tuple[float, float]:
    """Returns `(reward, penalty)` with the penalty already subtracted from the reward.

    One episode, all scalars: `score` in [0, 1] from the policy's own (mask-1) answer,
    `consults` its consultation turns, `penalty_coef` lambda_s. The engine calls it once
    per episode, so a batch's rewards are `(B,)`, one per episode, broadcast by the
    trainer to that episode's mask-1 tokens only.

    >>> composite_reward(1.0, True, 2, 0.05)
    (0.9, 0.1)
    >>> composite_reward(0.0, True, 2, 0.05)
    (0.1, 0.0)
    >>> composite_reward(0.0, False, 0, 0.0)
    (0.0, 0.0)
    """
    if score > 0:
        base = score
    elif well_formed:
        base = cfg.format_reward
    else:
        base = 0.0
    penalty = consult_penalty(score, consults, penalty_coef, penalty_apply_to)
    return round(base - penalty, 12), round(penalty, 12)
