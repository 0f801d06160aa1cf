"""The global acceptance rate rho_s (EAPO.md §2): how likely an expert reply is to reach
the policy at global training step s.

Why annealing: help raises the chance that a rollout succeeds, so hard problems yield a
gradient; withdrawing it forces the skills reinforced on helped paths to stand alone,
which is how the policy is evaluated. The paper uses rho_s = 1/s; that closes help
within a handful of steps, so the other shapes here (ours) can keep it open for a good
part of the run (PILOT lessons): linear and cosine anneal over `steps`, which defaults to
the run length when the caller passes `total_steps`.

Every shape is a pure `f(step, cfg) -> float` in [0, 1] in the `ACCEPTANCE_SHAPES`
registry, with one signature, so no caller special-cases a name. `step` is the 1-based
global training step. The decreasing shapes start at `start` on step 1 and approach
`end`.

Not here: the per-problem adaptive rate (`adaptive`, an overlay configured by
`AcceptanceConfig.adaptive`), and the coin (`gate`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable

from eapo.registry import Registry
from eapo.schema.checks import check_count as _check_count
from eapo.schema.schedules import AcceptanceConfig  # re-export: the section lives in eapo.schema


# Shapes that need `steps` (from the config or the run length).
_NEEDS_STEPS = ("linear", "cosine", "phased")


def check_step(step: int) -> None:
    """Refuse anything but a 1-based global training step."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an int (the 1-based global training step), got {step!r}")
    if step < 1:
        raise ValueError(f"step must be >= 1 (the 1-based global training step), got {step}")


def progress(step: int, steps: int) -> float:
    """Share of an annealing of `steps` steps done at `step`: 0 on step 1, 1 on step
    `steps` and after. A one-step annealing is done at once.

    >>> progress(1, 10), progress(10, 10), progress(11, 10), progress(1, 1)
    (0.0, 1.0, 1.0, 1.0)
    """
    check_step(step)
    _check_count("steps", steps)
    if steps == 1:
        return 1.0
    return min(1.0, (step - 1) / (steps - 1))


def resolve_steps(steps: int | None, total_steps: int | None, what: str) -> int:
    """The annealing length: the configured one, else the run length; an error names both."""
    if steps is not None:
        return steps
    if total_steps is None:
        raise ValueError(f"{what} needs `steps` in its config or the run length (total_steps=...)")
    _check_count("total_steps", total_steps)
    return total_steps


# ---------------------------------------------------------------------------------------
# Shapes: f(step, cfg) -> rho in [0, 1]. `cfg.steps` is already resolved for those that
# need it.

ACCEPTANCE_SHAPES: Registry[Callable[[int, AcceptanceConfig], float]] = Registry("acceptance schedule")


def _towards_end(cfg: AcceptanceConfig, weight: float) -> float:
    # start at weight 1, end at weight 0. Written from `end` so weight 0 gives `end`
    # exactly, and clipped so rounding never leaves [end, start] (or [start, end]).
    value = cfg.end + (cfg.start - cfg.end) * weight
    return min(max(cfg.start, cfg.end), max(min(cfg.start, cfg.end), value))


@ACCEPTANCE_SHAPES.register("inverse")
def _inverse(step: int, cfg: AcceptanceConfig) -> float:
    # The paper's rho_s = 1/s (start = 1, end = 0).
    return max(cfg.end, cfg.start / step)


@ACCEPTANCE_SHAPES.register("constant")
def _constant(step: int, cfg: AcceptanceConfig) -> float:
    return cfg.value


@ACCEPTANCE_SHAPES.register("linear")
def _linear(step: int, cfg: AcceptanceConfig) -> float:
    assert cfg.steps is not None
    return _towards_end(cfg, 1.0 - progress(step, cfg.steps))


@ACCEPTANCE_SHAPES.register("cosine")
def _cosine(step: int, cfg: AcceptanceConfig) -> float:
    assert cfg.steps is not None
    return _towards_end(cfg, 0.5 * (1.0 + math.cos(math.pi * progress(step, cfg.steps))))


@ACCEPTANCE_SHAPES.register("phased")
def _phased(step: int, cfg: AcceptanceConfig) -> float:
    # `start` up to `steps`, then `end`: a help phase then a closed phase, with no
    # acceptance lottery inside either (with rho 1 a group's rewards differ by the policy's
    # own choices only; docs/notebook/2026-11-27-issue4-stop12-stronger-help.md).
    assert cfg.steps is not None
    return cfg.start if step <= cfg.steps else cfg.end


@ACCEPTANCE_SHAPES.register("exponential")
def _exponential(step: int, cfg: AcceptanceConfig) -> float:
    assert cfg.half_life is not None
    return max(cfg.end, cfg.start * 0.5 ** ((step - 1) / cfg.half_life))


def acceptance_rate(step: int, cfg: AcceptanceConfig, total_steps: int | None = None) -> float:
    """rho_s, the global acceptance rate at 1-based training step `step`.

    `total_steps` (the run length) stands in for `cfg.steps` when that is None.

    >>> [acceptance_rate(s, AcceptanceConfig()) for s in (1, 2, 4)]
    [1.0, 0.5, 0.25]
    >>> acceptance_rate(6, AcceptanceConfig(kind="linear"), total_steps=11)
    0.5
    """
    check_step(step)
    if cfg.kind in _NEEDS_STEPS:
        half = max(1, total_steps // 2) if cfg.kind == "phased" and total_steps is not None else total_steps
        steps = resolve_steps(cfg.steps, half, f"acceptance kind {cfg.kind!r}")
        if steps != cfg.steps:
            cfg = dataclasses.replace(cfg, steps=steps)
    rho = ACCEPTANCE_SHAPES.get(cfg.kind)(step, cfg)
    return min(1.0, max(0.0, rho))  # guard float drift at the ends
