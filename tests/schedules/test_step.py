"""The schedules of one step (`eapo.schedules.step`): values at hand-computed steps, the
evaluation values, and the gate factory's coins."""

from __future__ import annotations

import doctest

import pytest

from eapo.schedules import step as step_module
from eapo.schedules.acceptance import AcceptanceConfig
from eapo.schedules.budget import TurnBudgetConfig
from eapo.schedules.gate import AcceptanceGate
from eapo.schedules.penalty import PenaltyConfig
from eapo.schedules.step import Schedules, StepSchedule, acceptance_gate


def test_docstring_examples():
    assert doctest.testmod(step_module).failed == 0


def test_linear_rho_budget_and_penalty_at_hand_computed_steps():
    # rho 1 -> 0 linearly over N = 5 updates: (5 - s) / 4; budget 10 -> 4 over the same
    # 5 steps: 10 - 6 (s - 1) / 4 rounded half up (8.5 -> 9, 5.5 -> 6); lambda_s = 0.2 / s
    s = Schedules(AcceptanceConfig(kind="linear"), TurnBudgetConfig(train=10, eval=4),
                  PenaltyConfig(coef=0.2, kind="inverse"), total_steps=5)
    got = [s.at(t) for t in range(1, 7)]
    assert [g.rho for g in got] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert [g.turn_budget for g in got] == [10, 9, 7, 6, 4, 4]
    assert [g.penalty_coef for g in got] == pytest.approx([0.2, 0.1, 0.2 / 3, 0.05, 0.04, 0.2 / 6])


def test_the_paper_default_and_explicit_annealing_lengths():
    s = Schedules(AcceptanceConfig(), TurnBudgetConfig(train=10, eval=4, steps=3), PenaltyConfig())
    assert [s.at(t) for t in (1, 2, 4)] == [StepSchedule(1.0, 10, 0.0), StepSchedule(0.5, 7, 0.0),
                                            StepSchedule(0.25, 4, 0.0)]


def test_evaluation_has_no_help_the_eval_budget_and_no_penalty():
    s = Schedules(AcceptanceConfig(kind="constant", value=0.9), TurnBudgetConfig(train=8, eval=3),
                  PenaltyConfig(coef=0.5), total_steps=10)
    assert s.evaluation() == StepSchedule(rho=0.0, turn_budget=3, penalty_coef=0.0)


def test_metrics_are_logged_under_the_schedule_prefix():
    assert StepSchedule(0.5, 7, 0.01).metrics() == {"schedule/rho": 0.5, "schedule/turn_budget": 7.0,
                                                    "schedule/penalty_coef": 0.01}


def test_a_step_must_be_one_based():
    s = Schedules(AcceptanceConfig(), TurnBudgetConfig(), PenaltyConfig(), total_steps=4)
    with pytest.raises(ValueError, match="1-based"):
        s.at(0)


def test_a_shape_without_a_length_says_what_it_needs():
    with pytest.raises(ValueError, match="total_steps"):
        Schedules(AcceptanceConfig(kind="linear"), TurnBudgetConfig(kind="constant"), PenaltyConfig()).at(1)


@pytest.mark.parametrize("granularity", ["reply", "question", "episode"])
def test_the_gate_factory_is_the_gate_callers_built_by_hand(granularity):
    # run.py and verl built AcceptanceGate(seed=cfg.seed, granularity=cfg.acceptance.granularity)
    gate = acceptance_gate(AcceptanceConfig(granularity=granularity), 7)
    assert gate == AcceptanceGate(seed=7, granularity=granularity)
    for uid in ("s1-p0-0", "s3-p2-1"):
        for i, q in enumerate(["What is 2+2?", "what is 2+2", "other"]):
            assert gate.decide(uid, q, i, 0.5) == AcceptanceGate(seed=7, granularity=granularity).decide(uid, q, i, 0.5)


def test_the_gate_factory_draws_as_pinned():
    # values of tests/schedules/test_gate.py's pinned draws (seed 0, episode "uid-0")
    assert acceptance_gate(AcceptanceConfig(), 0).draw("uid-0", "What is 2+2?", 0) == 0.9535656668397838
    assert acceptance_gate(AcceptanceConfig(granularity="episode"), 0).draw("uid-0", "x", 3) == 0.07014810773580271
