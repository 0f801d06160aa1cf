"""The schedule sections of a run (EAPO.md §2): `acceptance` (rho_s, with its optional
per-problem `adaptive` overlay), `turn_budget` (T_s) and `penalty` (lambda_s).

Only the settings and their checks are here; the schedules themselves (pure functions of
the step) are `eapo.schedules`. The names a `kind` may take are fixed here, so a config
is checked without importing the functions; `eapo.schedules` registers one function per
name and a test (tests/schema) checks that the two lists agree.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from eapo.schema.checks import check_count, check_unit

__all__ = [
    "ACCEPTANCE_KINDS",
    "APPLY_TO",
    "BUDGET_KINDS",
    "COMBINE_RULES",
    "GRANULARITIES",
    "PENALTY_KINDS",
    "AcceptanceConfig",
    "AdaptiveConfig",
    "PenaltyConfig",
    "TurnBudgetConfig",
]

# The names of `eapo.schedules.acceptance.ACCEPTANCE_SHAPES`, sorted as a Registry lists them.
ACCEPTANCE_KINDS = ("constant", "cosine", "exponential", "inverse", "linear", "phased")
# The names of `eapo.schedules.budget.BUDGET_SHAPES`.
BUDGET_KINDS = ("constant", "linear", "step")
# The names of `eapo.schedules.adaptive.COMBINERS`.
COMBINE_RULES = ("min", "override", "product")
# What one acceptance draw covers (`eapo.schedules.gate`).
GRANULARITIES = ("reply", "question", "episode")
# lambda_s = coef * shape(s), the shape taken from the acceptance schedules with start 1,
# end 0, so "annealed like rho_s" means exactly that. Shapes needing more (exponential's
# half-life) are left out to keep this config small.
PENALTY_KINDS = ("constant", "cosine", "inverse", "linear")
APPLY_TO = ("success", "all")


@dataclass(frozen=True)
class AdaptiveConfig:
    """Per-problem acceptance. Defaults: open (rho 1) until a problem is solved alone at
    least once in its last 8 unaided episodes, then closed (rho 0)."""

    window: int = 8
    """How many recent unaided outcomes of a problem are kept; older ones are forgotten."""
    threshold: float = 0.125
    """Help is open while the recent unaided success rate is strictly below this."""
    open_rho: float = 1.0
    """Acceptance rate of an open problem."""
    closed_rho: float = 0.0
    """Acceptance rate of a closed problem."""
    min_samples: int = 1
    """Below this many unaided outcomes a problem counts as unsolved (open)."""
    combine: str = "override"
    """How the per-problem rate meets the global rate: override, min or product."""

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, numbers.Integral) or self.window < 1:
            raise ValueError(f"AdaptiveConfig.window must be an int >= 1, got {self.window!r}")
        if (
            isinstance(self.min_samples, bool)
            or not isinstance(self.min_samples, numbers.Integral)
            or not 1 <= self.min_samples <= self.window
        ):
            raise ValueError(
                f"AdaptiveConfig.min_samples must be an int in [1, window={self.window}], "
                f"got {self.min_samples!r}"
            )
        check_unit("AdaptiveConfig.threshold", self.threshold)
        check_unit("AdaptiveConfig.open_rho", self.open_rho)
        check_unit("AdaptiveConfig.closed_rho", self.closed_rho)
        if self.combine not in COMBINE_RULES:
            raise ValueError(
                f"AdaptiveConfig.combine must be one of {', '.join(COMBINE_RULES)}, got {self.combine!r}"
            )


@dataclass(frozen=True)
class AcceptanceConfig:
    """Acceptance schedule. The default is the paper's rho_s = 1/s, drawn once per
    (episode, question)."""

    kind: str = "inverse"
    """Shape of rho_s: inverse (paper), constant, linear, cosine, exponential, phased."""
    value: float = 1.0
    """The rate of the constant shape."""
    start: float = 1.0
    """Rate at step 1 of the decreasing shapes (inverse gives start / s)."""
    end: float = 0.0
    """Rate the shapes approach: reached at `steps` (linear, cosine), a floor (inverse, exponential)."""
    steps: int | None = None
    """Steps over which linear/cosine anneal, or the last step of the open phase of
    phased; null takes the run length (`total_steps`), half of it for phased."""
    half_life: float | None = None
    """Steps over which the exponential shape halves; required by it."""
    granularity: str = "question"
    """What one acceptance draw covers: reply (paper), question (ours) or episode
    (see `eapo.schedules.gate`)."""
    adaptive: AdaptiveConfig | None = None
    """Per-problem overlay (ours, EAPO.md §2 adaptive schedule); null for the global rate
    only; e.g. {window: 8, threshold: 0.125, combine: override}."""
    closed: str = "refuse"
    """(ours) A training step whose rho_s is 0: "refuse" answers consultations "expert
    unavailable" (the paper's rho = 0); "forbid" forbids the consult tag, as the forbid
    lock does at evaluation, so those steps train the expert-free context itself."""

    def __post_init__(self) -> None:
        if self.kind not in ACCEPTANCE_KINDS:
            raise ValueError(
                f"AcceptanceConfig.kind must be one of {', '.join(ACCEPTANCE_KINDS)}, got {self.kind!r}"
            )
        for name in ("value", "start", "end"):
            check_unit(f"AcceptanceConfig.{name}", getattr(self, name))
        if self.steps is not None:
            check_count("AcceptanceConfig.steps", self.steps)
        h = self.half_life
        if h is not None and (isinstance(h, bool) or not isinstance(h, numbers.Real) or not h > 0):
            raise ValueError(f"AcceptanceConfig.half_life must be a number of steps > 0, got {h!r}")
        if self.kind == "exponential" and self.half_life is None:
            raise ValueError("AcceptanceConfig.half_life is required by kind 'exponential' (steps per halving)")
        if self.kind in ("inverse", "exponential") and self.end > self.start:
            raise ValueError(
                f"AcceptanceConfig.end ({self.end}) is a floor for kind {self.kind!r}, "
                f"so it must be <= start ({self.start})"
            )
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"AcceptanceConfig.granularity must be one of {', '.join(GRANULARITIES)}, got {self.granularity!r}"
            )
        if self.closed not in ("refuse", "forbid"):
            raise ValueError(f"AcceptanceConfig.closed must be refuse or forbid, got {self.closed!r}")
        if self.adaptive is not None and not isinstance(self.adaptive, AdaptiveConfig):
            raise TypeError(f"AcceptanceConfig.adaptive must be an AdaptiveConfig or None, got {self.adaptive!r}")


@dataclass(frozen=True)
class TurnBudgetConfig:
    """Turns per episode: `train` at step 1, `eval` by step `steps` and at evaluation."""

    train: int = 10
    """Turn budget at the start of training (paper: up to 10)."""
    eval: int = 4
    """Turn budget at evaluation, and the end point of the contraction."""
    kind: str = "linear"
    """Shape: linear (ours), constant (always `train`), step (`train` until `steps`, then `eval`)."""
    steps: int | None = None
    """Step at which the budget reaches `eval`; null takes the run length (`total_steps`)."""

    def __post_init__(self) -> None:
        check_count("TurnBudgetConfig.train", self.train)
        check_count("TurnBudgetConfig.eval", self.eval)
        if self.eval > self.train:
            raise ValueError(
                f"TurnBudgetConfig.eval ({self.eval}) must be <= train ({self.train}): the budget only contracts"
            )
        if self.kind not in BUDGET_KINDS:
            raise ValueError(f"TurnBudgetConfig.kind must be one of {', '.join(BUDGET_KINDS)}, got {self.kind!r}")
        if self.steps is not None:
            check_count("TurnBudgetConfig.steps", self.steps)


@dataclass(frozen=True)
class PenaltyConfig:
    """Consultation penalty; off by default."""

    coef: float = 0.0
    """lambda at step 1: the reward cost of one consultation turn; 0 is off (the annealing
    of rho_s alone makes asking less useful)."""
    kind: str = "constant"
    """Schedule of lambda_s: constant, inverse (coef / s), linear or cosine (coef -> 0 over `steps`)."""
    apply_to: str = "success"
    """Charge successful completions only (safe with group normalisation), or all (needs
    rl.scale_rewards: none, EAPO.md §8)."""
    steps: int | None = None
    """Steps over which linear/cosine anneal; null takes the run length (`total_steps`)."""

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
            check_count("PenaltyConfig.steps", self.steps)
