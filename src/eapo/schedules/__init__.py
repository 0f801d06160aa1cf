"""Training-time schedules (EAPO.md §2) as pure functions of the global training step.

Why a layer of their own: the rollout may run inside another framework that only knows
the step (EAPO.md §8, "training step unknown to the rollout"), so everything a schedule
decides is a function of `(step, config)` or, for the adaptive rate, of plain outcome
tuples that cross process boundaries. No I/O, no random state.

- `acceptance`: the global rate rho_s (1/s as in the paper, and our alternatives);
- `adaptive`: the per-problem rate from recent unaided success;
- `gate`: the stateless coin that accepts or refuses a reply, at a chosen granularity;
- `budget`: the turn budget T_s contracting from training to evaluation;
- `penalty`: the optional consultation cost lambda_s, and how it is charged;
- `step`: the three values at one step (`Schedules.at`) and the run's gate, the one path
  TRL and verl share (its docstring walks rho from the YAML to the draw).
"""

from eapo.schedules.acceptance import ACCEPTANCE_SHAPES, AcceptanceConfig, acceptance_rate, progress
from eapo.schedules.adaptive import (
    COMBINERS,
    AdaptiveConfig,
    Outcome,
    ProblemHistory,
    adaptive_rate,
    combine_rates,
    is_open,
)
from eapo.schedules.budget import BUDGET_SHAPES, TurnBudgetConfig, eval_turn_budget, turn_budget
from eapo.schedules.gate import GRANULARITIES, AcceptanceGate, accept
from eapo.schedules.penalty import PENALTY_KINDS, PenaltyConfig, consult_penalty, penalty_coef
from eapo.schedules.step import Schedules, StepSchedule, acceptance_gate

__all__ = [
    "ACCEPTANCE_SHAPES",
    "BUDGET_SHAPES",
    "COMBINERS",
    "GRANULARITIES",
    "PENALTY_KINDS",
    "AcceptanceConfig",
    "AcceptanceGate",
    "AdaptiveConfig",
    "Outcome",
    "PenaltyConfig",
    "ProblemHistory",
    "Schedules",
    "StepSchedule",
    "TurnBudgetConfig",
    "accept",
    "acceptance_gate",
    "acceptance_rate",
    "adaptive_rate",
    "combine_rates",
    "consult_penalty",
    "eval_turn_budget",
    "is_open",
    "penalty_coef",
    "progress",
    "turn_budget",
]
