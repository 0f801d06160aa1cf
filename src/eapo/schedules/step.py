"""The schedules of one global training step, and the coin they feed: the one path from
a run's schedule configs to the acceptance draw, shared by the TRL rollout
(`eapo.training.rollout_func`) and verl (`eapo.integrations.verl`).

- `Schedules(acceptance, budget, penalty, total_steps).at(step)` -> `StepSchedule(rho,
  turn_budget, penalty_coef)`: the three values of EAPO.md §2 at a 1-based global step;
  `.evaluation()` gives expert-free evaluation's (rho 0, the evaluation budget, no penalty).
- `acceptance_gate(acceptance, seed)`: the seeded gate at the configured granularity.

Walk of `rho`, from the YAML to the draw (four modules; the YAML reader `eapo.typed_yaml`
is generic and knows no key):

1. `eapo.schema.schedules`: the `acceptance.*` keys load into `AcceptanceConfig`;
2. here: `Schedules.at(step).rho`, the global rate (its shape, one call deeper, is
   `eapo.schedules.acceptance.acceptance_rate`), and `acceptance_gate`, the coin's seed and
   granularity. The driver (TRL's `EAPORollout`, verl's agent loop) hands both to the
   engine, through the adaptive overlay (`eapo.schedules.adaptive`) when one is set;
3. `eapo.rollout.engine.RolloutEngine`: `rates` zeroes every rate unless consulting is
   open (decided there only), and each query of a consultation is put to the gate;
4. `eapo.schedules.gate.AcceptanceGate.decide`: the draw `u` and `accept(u, rho)`.

Not here: the per-problem adaptive rate (`adaptive`; it needs the history of outcomes the
training layer keeps), and whether consulting is open at all (the engine's consult mode).
Pure: no I/O, no random state.
"""

from __future__ import annotations

from dataclasses import dataclass

from eapo.schedules.acceptance import acceptance_rate
from eapo.schedules.budget import eval_turn_budget, turn_budget
from eapo.schedules.gate import AcceptanceGate
from eapo.schedules.penalty import penalty_coef
from eapo.schema.schedules import AcceptanceConfig, PenaltyConfig, TurnBudgetConfig


@dataclass(frozen=True)
class StepSchedule:
    """The schedules' values at one global step."""

    rho: float
    """rho_s, the global acceptance rate (before any adaptive overlay)."""
    turn_budget: int
    """T_s, the turns an episode may take."""
    penalty_coef: float
    """lambda_s, the reward cost of one consultation turn."""

    def metrics(self) -> dict[str, float]:
        """The values as logged, under the `schedule/` prefix."""
        return {"schedule/rho": self.rho, "schedule/turn_budget": float(self.turn_budget),
                "schedule/penalty_coef": self.penalty_coef}


@dataclass(frozen=True)
class Schedules:
    """A run's three schedules and their horizon. `total_steps` (the run length) stands in
    for each config's `steps` when that is None.

    >>> s = Schedules(AcceptanceConfig(kind="linear"), TurnBudgetConfig(train=10, eval=4), PenaltyConfig(), 7)
    >>> s.at(1), s.at(4).rho, s.at(7).turn_budget
    (StepSchedule(rho=1.0, turn_budget=10, penalty_coef=0.0), 0.5, 4)
    """

    acceptance: AcceptanceConfig
    budget: TurnBudgetConfig
    penalty: PenaltyConfig
    total_steps: int | None = None

    def at(self, step: int) -> StepSchedule:
        """The values at 1-based global training step `step`."""
        return StepSchedule(acceptance_rate(step, self.acceptance, self.total_steps),
                            turn_budget(step, self.budget, self.total_steps),
                            penalty_coef(step, self.penalty, self.total_steps))

    def evaluation(self) -> StepSchedule:
        """Expert-free evaluation: no help, the evaluation turn budget, no penalty."""
        return StepSchedule(0.0, eval_turn_budget(self.budget), 0.0)


def acceptance_gate(acceptance: AcceptanceConfig, seed: int) -> AcceptanceGate:
    """The run's acceptance coin: seeded by the run's seed, drawing at the configured
    granularity (EAPO.md §1 step 2)."""
    return AcceptanceGate(seed=seed, granularity=acceptance.granularity)
