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

from eapo.registry import Registry
from eapo.schedules.acceptance import check_step, progress, resolve_steps
from eapo.schema.schedules import TurnBudgetConfig  # re-export: the section lives in eapo.schema


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
