"""Acceptance, turn-budget and penalty schedules: exact values at hand-computed steps,
monotonicity, and validation errors that name the field."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eapo.schedules import acceptance, adaptive, budget, gate, penalty
from eapo.schedules.acceptance import ACCEPTANCE_SHAPES, AcceptanceConfig, acceptance_rate, progress
from eapo.schedules.adaptive import AdaptiveConfig
from eapo.schedules.budget import TurnBudgetConfig, eval_turn_budget, turn_budget
from eapo.schedules.penalty import PenaltyConfig, consult_penalty, penalty_coef


@pytest.mark.parametrize("module", [acceptance, adaptive, budget, gate, penalty])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.failed == 0


# --- acceptance: exact values -------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg, step, expected",
    [
        (AcceptanceConfig(), 1, 1.0),
        (AcceptanceConfig(), 2, 0.5),
        (AcceptanceConfig(), 4, 0.25),
        (AcceptanceConfig(kind="inverse", end=0.3), 4, 0.3),  # floor
        (AcceptanceConfig(kind="constant", value=0.7), 1, 0.7),
        (AcceptanceConfig(kind="constant", value=0.7), 10_000, 0.7),
        # linear 1 -> 0 over 10 steps: step 1 is 1, step 10 is 0, (s - 1) / 9 in between
        (AcceptanceConfig(kind="linear", steps=10), 1, 1.0),
        (AcceptanceConfig(kind="linear", steps=10), 6, 1 - 5 / 9),
        (AcceptanceConfig(kind="linear", steps=10), 10, 0.0),
        (AcceptanceConfig(kind="linear", steps=10), 11, 0.0),
        (AcceptanceConfig(kind="linear", start=0.8, end=0.2, steps=4), 3, 0.4),
        (AcceptanceConfig(kind="cosine", steps=11), 1, 1.0),
        (AcceptanceConfig(kind="cosine", steps=11), 6, 0.5),  # midpoint
        (AcceptanceConfig(kind="cosine", steps=11), 11, 0.0),
        (AcceptanceConfig(kind="cosine", start=0.9, end=0.1, steps=3), 2, 0.5),
        (AcceptanceConfig(kind="cosine", steps=5), 2, 0.5 * (1 + math.cos(math.pi / 4))),
        (AcceptanceConfig(kind="exponential", half_life=10), 1, 1.0),
        (AcceptanceConfig(kind="exponential", half_life=10), 11, 0.5),
        (AcceptanceConfig(kind="exponential", half_life=10), 21, 0.25),
        (AcceptanceConfig(kind="exponential", half_life=10, end=0.3), 21, 0.3),  # floor
        (AcceptanceConfig(kind="exponential", start=0.8, half_life=2), 3, 0.4),
    ],
)
def test_acceptance_values(cfg, step, expected):
    assert acceptance_rate(step, cfg) == pytest.approx(expected, abs=1e-12)


def test_total_steps_fills_in_missing_steps():
    cfg = AcceptanceConfig(kind="linear")
    assert acceptance_rate(6, cfg, total_steps=11) == pytest.approx(0.5)
    assert acceptance_rate(11, cfg, total_steps=11) == 0.0


def test_configured_steps_win_over_total_steps():
    cfg = AcceptanceConfig(kind="linear", steps=3)
    assert acceptance_rate(3, cfg, total_steps=1000) == 0.0


@pytest.mark.parametrize("kind", ["linear", "cosine", "phased"])
def test_annealing_without_any_length_is_an_error(kind):
    with pytest.raises(ValueError, match="total_steps"):
        acceptance_rate(1, AcceptanceConfig(kind=kind))


@pytest.mark.parametrize("kind", ["inverse", "constant"])
def test_shapes_without_length_need_none(kind):
    assert acceptance_rate(3, AcceptanceConfig(kind=kind)) >= 0.0


@pytest.mark.parametrize("step", [0, -1])
def test_step_is_one_based(step):
    with pytest.raises(ValueError, match="step must be >= 1"):
        acceptance_rate(step, AcceptanceConfig())


def test_step_must_be_an_int():
    with pytest.raises(TypeError, match="step"):
        acceptance_rate(1.5, AcceptanceConfig())  # type: ignore[arg-type]


def test_progress_single_step_annealing_is_done_at_once():
    assert progress(1, 1) == 1.0
    assert acceptance_rate(1, AcceptanceConfig(kind="linear", steps=1)) == 0.0


# --- acceptance: properties ---------------------------------------------------------------

rates = st.floats(min_value=0.0, max_value=1.0)
steps_ = st.integers(min_value=1, max_value=10**6)


@st.composite
def decreasing_configs(draw):
    kind = draw(st.sampled_from(["inverse", "linear", "cosine", "exponential", "phased"]))
    hi, lo = sorted([draw(rates), draw(rates)], reverse=True)
    return AcceptanceConfig(
        kind=kind,
        start=hi,
        end=lo,
        steps=draw(st.integers(min_value=1, max_value=10**5)),
        half_life=draw(st.floats(min_value=0.01, max_value=1e5)),
    )


@given(decreasing_configs(), steps_)
def test_decreasing_shapes_never_increase(cfg, step):
    assert acceptance_rate(step + 1, cfg) <= acceptance_rate(step, cfg)


@given(decreasing_configs(), steps_)
def test_decreasing_shapes_stay_between_end_and_start(cfg, step):
    assert cfg.end <= acceptance_rate(step, cfg) <= cfg.start


@given(decreasing_configs())
def test_decreasing_shapes_start_at_start(cfg):
    expected = cfg.end if cfg.kind in ("linear", "cosine") and cfg.steps == 1 else cfg.start
    assert acceptance_rate(1, cfg) == pytest.approx(expected)


def test_every_registered_shape_is_checked_above():
    assert ACCEPTANCE_SHAPES.names() == ["constant", "cosine", "exponential", "inverse", "linear", "phased"]


def test_phased_is_open_then_closed_with_no_annealing_between():
    cfg = AcceptanceConfig(kind="phased", steps=40)
    assert [acceptance_rate(s, cfg) for s in (1, 40, 41, 80)] == [1.0, 1.0, 0.0, 0.0]
    # without steps it opens for the first half of the run
    half = AcceptanceConfig(kind="phased")
    assert [acceptance_rate(s, half, total_steps=81) for s in (40, 41)] == [1.0, 0.0]
    assert acceptance_rate(2, AcceptanceConfig(kind="phased", steps=1, start=0.8, end=0.2)) == 0.2


# --- acceptance: validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"kind": "sigmoid"}, "kind"),
        ({"value": 1.5}, "value"),
        ({"start": -0.1}, "start"),
        ({"end": float("nan")}, "end"),
        ({"steps": 0}, "steps"),
        ({"half_life": 0}, "half_life"),
        ({"kind": "exponential"}, "half_life"),
        ({"kind": "inverse", "start": 0.2, "end": 0.5}, "end"),
        ({"granularity": "turn"}, "granularity"),
        ({"adaptive": {"window": 4}}, "adaptive"),
    ],
)
def test_acceptance_config_errors_name_the_field(kwargs, field):
    with pytest.raises((ValueError, TypeError), match=rf"AcceptanceConfig\.{field}"):
        AcceptanceConfig(**kwargs)


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(ValueError, match="constant, cosine, exponential, inverse, linear"):
        AcceptanceConfig(kind="sigmoid")


def test_acceptance_config_takes_an_adaptive_overlay():
    cfg = AcceptanceConfig(adaptive=AdaptiveConfig(window=4))
    assert cfg.adaptive is not None and cfg.adaptive.window == 4


# --- turn budget --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg, step, expected",
    [
        (TurnBudgetConfig(steps=7), 1, 10),
        (TurnBudgetConfig(steps=7), 4, 7),  # middle: 10 - 6 * 3/6
        (TurnBudgetConfig(steps=7), 7, 4),
        (TurnBudgetConfig(steps=7), 100, 4),
        (TurnBudgetConfig(train=10, eval=4, steps=5), 2, 9),  # 8.5 rounds half up
        (TurnBudgetConfig(train=5, eval=5, steps=3), 2, 5),
        (TurnBudgetConfig(kind="constant"), 1000, 10),
        (TurnBudgetConfig(kind="step", steps=5), 4, 10),
        (TurnBudgetConfig(kind="step", steps=5), 5, 4),
    ],
)
def test_turn_budget_values(cfg, step, expected):
    assert turn_budget(step, cfg) == expected


def test_turn_budget_takes_the_run_length():
    cfg = TurnBudgetConfig()
    assert [turn_budget(s, cfg, total_steps=7) for s in (1, 4, 7)] == [10, 7, 4]
    with pytest.raises(ValueError, match="total_steps"):
        turn_budget(1, cfg)


@given(
    st.integers(min_value=1, max_value=20),
    st.integers(min_value=0, max_value=20),
    st.sampled_from(["linear", "step", "constant"]),
    st.integers(min_value=1, max_value=1000),
    st.integers(min_value=1, max_value=2000),
)
def test_turn_budget_contracts_within_bounds(eval_, extra, kind, steps, step):
    cfg = TurnBudgetConfig(train=eval_ + extra, eval=eval_, kind=kind, steps=steps)
    now, later = turn_budget(step, cfg), turn_budget(step + 1, cfg)
    assert cfg.eval <= later <= now <= cfg.train


def test_eval_turn_budget():
    assert eval_turn_budget(TurnBudgetConfig(train=8, eval=3)) == 3


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"train": 0}, "train"),
        ({"eval": 0}, "eval"),
        ({"train": 3, "eval": 4}, "eval"),
        ({"kind": "cosine"}, "kind"),
        ({"steps": 0}, "steps"),
    ],
)
def test_turn_budget_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"TurnBudgetConfig\.{field}"):
        TurnBudgetConfig(**kwargs)


# --- penalty ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg, step, total, expected",
    [
        (PenaltyConfig(), 5, None, 0.0),  # off by default, needs no run length
        (PenaltyConfig(coef=0.1), 50, None, 0.1),
        (PenaltyConfig(coef=0.1, kind="inverse"), 4, None, 0.025),
        (PenaltyConfig(coef=0.1, kind="linear", steps=11), 6, None, 0.05),
        (PenaltyConfig(coef=0.1, kind="linear"), 11, 11, 0.0),
        (PenaltyConfig(coef=0.1, kind="cosine", steps=3), 2, None, 0.05),
    ],
)
def test_penalty_coef_values(cfg, step, total, expected):
    assert penalty_coef(step, cfg, total_steps=total) == pytest.approx(expected)


def test_penalty_linear_without_length_is_an_error():
    with pytest.raises(ValueError, match="total_steps"):
        penalty_coef(1, PenaltyConfig(coef=0.1, kind="linear"))


@pytest.mark.parametrize("score", [0.0, -0.5])
def test_failed_completions_are_not_charged_under_success(score):
    assert consult_penalty(score, 3, 0.1, "success") == 0.0


def test_successes_and_everything_under_all_are_charged():
    assert consult_penalty(1.0, 3, 0.1, "success") == pytest.approx(0.3)
    assert consult_penalty(0.4, 3, 0.1, "success") == pytest.approx(0.3)  # partial F1 counts
    assert consult_penalty(0.0, 3, 0.1, "all") == pytest.approx(0.3)
    assert consult_penalty(1.0, 0, 0.1, "all") == 0.0


def test_all_failing_group_stays_flat_under_success():
    # EAPO.md §8: in an all-fail group the penalty must not be the only reward difference.
    rewards = [0.1 - consult_penalty(0.0, c, 0.05, "success") for c in (0, 1, 4)]
    assert len(set(rewards)) == 1


@pytest.mark.parametrize(
    "args, match",
    [
        ((1.0, -1, 0.1, "success"), "consults"),
        ((1.0, 1, -0.1, "success"), "coef"),
        ((1.0, 1, 0.1, "failures"), "apply_to"),
    ],
)
def test_consult_penalty_validates(args, match):
    with pytest.raises(ValueError, match=match):
        consult_penalty(*args)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"coef": -0.1}, "coef"),
        ({"coef": math.inf}, "coef"),
        ({"kind": "exponential"}, "kind"),
        ({"apply_to": "failure"}, "apply_to"),
        ({"steps": 0}, "steps"),
    ],
)
def test_penalty_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"PenaltyConfig\.{field}"):
        PenaltyConfig(**kwargs)
