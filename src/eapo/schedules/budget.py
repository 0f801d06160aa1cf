"""Turn-budget contraction (EAPO.md §2): the number of turns T_s an episode may take
shrinks from the training budget toward the evaluation budget over training.

Why: early on, turns spent consulting and reading replies are what let hard problems
succeed; the trained policy is evaluated alone with fewer turns, so training should end
in the regime it is judged in. Linear is our default (the paper gives no shape).

Every shape is `f(step, cfg) -> float` in the `BUDGET_SHAPES` registry, giving the
unrounded budget; `turn_budget` rounds it half up and clamps it to [eval, train].
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from eapo.registry import Registry
from eapo.schedules.acceptance import _check_count, check_step, progress, resolve_steps


@dataclass(frozen=True)
class TurnBudgetConfig:
    """Turns per episode: `train` at step 1, `eval` by step `steps` and at evaluation."""

    train: int = 10
    """Turn budget at the start of training (paper: up to 10)."""
    eval: int = 4
    """Turn budget at evaluation, and the end point of the contraction."""
    kind: str = "linear"
    """Shape: linear, constant (always `train`), step (`train` until `steps`, then `eval`)."""
    steps: int | None = None
    """Step at which the budget reaches `eval`; None takes the run length (`total_steps`)."""

    def __post_init__(self) -> None:
        _check_count("TurnBudgetConfig.train", self.train)
        _check_count("TurnBudgetConfig.eval", self.eval)
        if self.eval > self.train:
            raise ValueError(
                f"TurnBudgetConfig.eval ({self.eval}) must be <= train ({self.train}): the budget only contracts"
            )
        if self.kind not in BUDGET_SHAPES:
            raise ValueError(f"TurnBudgetConfig.kind must be one of {', '.join(BUDGET_SHAPES)}, got {self.kind!r}")
        if self.steps is not None:
            _check_count("TurnBudgetConfig.steps", self.steps)


BUDGET_SHAPES: Registry[Callable[[int, TurnBudgetConfig], float]] = Registry("turn budget schedule")


@BUDGET_SHAPES.register("linear")
def _linear(step: int, cfg: TurnBudgetConfig) -> float:
    assert cfg.steps is not None
    return cfg.train + (cfg.eval - cfg.train) * progress(step, cfg.steps)


@BUDGET_SHAPES.register("constant")
def _constant(step: int, cfg: TurnBudgetConfig) -> float:
    return cfg.train


@BUDGET_SHAPES.register("step")
def _step(step: int, cfg: TurnBudgetConfig) -> float:
    assert cfg.steps is not None
    return cfg.eval if step >= cfg.steps else cfg.train


_NEEDS_STEPS = ("linear", "step")


def turn_budget(step: int, cfg: TurnBudgetConfig, total_steps: int | None = None) -> int:
    """T_s, the turn budget of an episode at 1-based training step `step`.

    >>> cfg = TurnBudgetConfig(train=10, eval=4, steps=7)
    >>> [turn_budget(s, cfg) for s in (1, 4, 7, 8)]
    [10, 7, 4, 4]
    """
    check_step(step)
    if cfg.kind in _NEEDS_STEPS:
        steps = resolve_steps(cfg.steps, total_steps, f"turn budget kind {cfg.kind!r}")
        if steps != cfg.steps:
            cfg = dataclasses.replace(cfg, steps=steps)
    value = BUDGET_SHAPES.get(cfg.kind)(step, cfg)
    # Half up, not Python's round-half-to-even: a budget halfway between two counts always
    # keeps the larger one, whatever their parity.
    return min(cfg.train, max(cfg.eval, math.floor(value + 0.5)))


def eval_turn_budget(cfg: TurnBudgetConfig) -> int:
    """The budget an expert-free evaluation runs with."""
    return cfg.eval
