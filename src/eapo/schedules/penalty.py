"""The optional consultation penalty (EAPO.md §2, §3): `lambda_s * consults` subtracted
from the reward, with its own schedule for lambda_s. Default off (coef 0): the annealing
of rho_s alone makes asking less useful over time.

Why it is applied to successful completions only by default (EAPO.md §8, "a penalty that
becomes the signal"): in a group where every completion fails, the rewards differ only by
`lambda * consults`. Group normalisation divides those tiny differences by the group's
equally tiny spread, which turns them into full-size advantages: the whole gradient of
the group then says "ask less", whatever rho_s is. Our pilot stopped consulting within
~50 updates although help was open 90% of the time (PILOT lesson 2). Charging successes
only leaves all-failing groups at zero advantage. The other safe choice, charging all
completions but not dividing by the group spread (`scale_rewards="none"`), belongs to the
training layer, which should refuse `apply_to="all"` with spread scaling on.

"Success" is `score > 0`, as in the reward of EAPO.md §3 (so a partial F1 counts).
Consults are consultation *turns* (`Episode.consults`), not queries.
"""

from __future__ import annotations

import numbers

from eapo.schedules.acceptance import acceptance_rate, check_step
from eapo.schema.schedules import APPLY_TO, PENALTY_KINDS, AcceptanceConfig, PenaltyConfig  # re-export: PenaltyConfig, the constants


def penalty_coef(step: int, cfg: PenaltyConfig, total_steps: int | None = None) -> float:
    """lambda_s at 1-based training step `step`.

    >>> [penalty_coef(s, PenaltyConfig(coef=0.1, kind="inverse")) for s in (1, 2)]
    [0.1, 0.05]
    """
    check_step(step)
    if cfg.coef == 0:
        return 0.0  # off: no run length needed
    shape = AcceptanceConfig(kind=cfg.kind, value=1.0, start=1.0, end=0.0, steps=cfg.steps, granularity="episode")
    return cfg.coef * acceptance_rate(step, shape, total_steps)


def consult_penalty(score: float, consults: int, coef: float, apply_to: str = "success") -> float:
    """The amount to subtract from an episode's reward (>= 0).

    >>> consult_penalty(1.0, 2, 0.05, "success"), consult_penalty(0.0, 2, 0.05, "success")
    (0.1, 0.0)
    >>> consult_penalty(0.0, 2, 0.05, "all")
    0.1
    """
    if apply_to not in APPLY_TO:
        raise ValueError(f"apply_to must be one of {', '.join(APPLY_TO)}, got {apply_to!r}")
    if isinstance(consults, bool) or not isinstance(consults, numbers.Integral) or consults < 0:
        raise ValueError(f"consults must be an int >= 0, got {consults!r}")
    if not coef >= 0:
        raise ValueError(f"coef must be >= 0, got {coef!r}")
    if apply_to == "success" and not score > 0:
        return 0.0
    return coef * consults
