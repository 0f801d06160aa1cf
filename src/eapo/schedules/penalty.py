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

import math
import numbers
from dataclasses import dataclass

from eapo.schedules.acceptance import AcceptanceConfig, _check_count, acceptance_rate, check_step

# lambda_s = coef * shape(s), the shape taken from the acceptance schedules with start 1,
# end 0, so "annealed like rho_s" means exactly that. Shapes needing more (exponential's
# half-life) are left out to keep this config small.
PENALTY_KINDS = ("constant", "cosine", "inverse", "linear")
APPLY_TO = ("success", "all")


@dataclass(frozen=True)
class PenaltyConfig:
    """Consultation penalty; off by default."""

    coef: float = 0.0
    """lambda at step 1: the reward cost of one consultation turn."""
    kind: str = "constant"
    """Schedule of lambda_s: constant, inverse (coef / s), linear or cosine (coef -> 0 over `steps`)."""
    apply_to: str = "success"
    """Charge successful completions only (safe with group normalisation), or all."""
    steps: int | None = None
    """Steps over which linear/cosine anneal; None takes the run length (`total_steps`)."""

    def __post_init__(self) -> None:
        if (
            isinstance(self.coef, bool)
            or not isinstance(self.coef, numbers.Real)
            or not math.isfinite(self.coef)
            or self.coef < 0
        ):
            raise ValueError(f"PenaltyConfig.coef must be a finite number >= 0, got {self.coef!r}")
        if self.kind not in PENALTY_KINDS:
            raise ValueError(f"PenaltyConfig.kind must be one of {', '.join(PENALTY_KINDS)}, got {self.kind!r}")
        if self.apply_to not in APPLY_TO:
            raise ValueError(f"PenaltyConfig.apply_to must be one of {', '.join(APPLY_TO)}, got {self.apply_to!r}")
        if self.steps is not None:
            _check_count("PenaltyConfig.steps", self.steps)


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
