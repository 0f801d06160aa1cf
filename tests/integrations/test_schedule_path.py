"""TRL and verl walk one schedule path (issue 18 item 2): for the same schedule configs,
`EAPORollout` (TRL) and `schedule_at`/`ConsultHandler` (verl) give the same values at every
step, through the same `eapo.schedules.step.StepSchedule`, and gate with equal coins."""

from __future__ import annotations

import pytest

import eapo.integrations.verl.core as verl_core
from eapo.integrations.verl.core import ConsultHandler, StepSchedule, VerlEAPOConfig, schedule_at
from eapo.models.tokenizer import build_tokenizer
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.schedules import step as step_module
from eapo.schedules.acceptance import AcceptanceConfig, acceptance_rate
from eapo.schedules.budget import TurnBudgetConfig, turn_budget
from eapo.schedules.gate import AcceptanceGate
from eapo.schedules.penalty import PenaltyConfig, penalty_coef
from eapo.training.rollout_func import EAPORollout
from eapo.types import Problem

TOTAL = 12
CASES = {
    "paper": (AcceptanceConfig(), TurnBudgetConfig(), PenaltyConfig()),
    "linear": (AcceptanceConfig(kind="linear", granularity="episode"), TurnBudgetConfig(train=10, eval=4),
               PenaltyConfig(coef=0.05, kind="linear")),
    "phased": (AcceptanceConfig(kind="phased", granularity="reply"), TurnBudgetConfig(kind="step", steps=6),
               PenaltyConfig(coef=0.1, kind="inverse")),
    "cosine": (AcceptanceConfig(kind="cosine", start=0.9, end=0.1, steps=8), TurnBudgetConfig(train=6, eval=2),
               PenaltyConfig(coef=0.02, kind="cosine", steps=5)),
}


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def trl_rollout(tok, acceptance, budget, penalty):
    engine = RolloutEngine(None, tok, RolloutConfig(system_prompt="", consult_mode="refuse"))
    return EAPORollout(engine, [Problem("p", "1+1", "2")], acceptance=acceptance, budget=budget, penalty=penalty,
                       total_steps=TOTAL)


def verl_config(acceptance, budget, penalty):
    return VerlEAPOConfig(acceptance=acceptance, turn_budget=budget, penalty=penalty, total_steps=TOTAL,
                          pool_factory="unused:x")


def test_verls_public_names_are_the_shared_ones():
    assert verl_core.StepSchedule is step_module.StepSchedule is StepSchedule


@pytest.mark.parametrize("case", sorted(CASES))
def test_trl_and_verl_give_the_same_schedule_at_every_step(tok, case):
    acceptance, budget, penalty = CASES[case]
    trl, vc = trl_rollout(tok, *CASES[case]), verl_config(*CASES[case])
    for step in range(1, TOTAL + 3):
        shared = trl.schedules.at(step)
        assert schedule_at(vc, step, validate=False) == shared
        # and both equal the formulas each path called before it was shared
        old = (acceptance_rate(step, acceptance, TOTAL), turn_budget(step, budget, TOTAL),
               penalty_coef(step, penalty, TOTAL))
        assert (shared.rho, shared.turn_budget, shared.penalty_coef) == old
        assert trl.schedule(step) == {"rho": old[0], "turn_budget": float(old[1]), "penalty_coef": old[2]}
    assert schedule_at(vc, 0, validate=False) == trl.schedules.at(1)  # verl's step before the first update
    assert schedule_at(vc, 5, validate=True) == trl.schedules.evaluation() == StepSchedule(0.0, budget.eval, 0.0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_trl_and_verl_gate_with_the_same_coins(case):
    acceptance = CASES[case][0]
    handler = ConsultHandler(verl_config(*CASES[case]), None)
    # what run.py and verl built by hand before: the run's seed and the configured granularity
    assert handler.gate == AcceptanceGate(seed=0, granularity=acceptance.granularity)
