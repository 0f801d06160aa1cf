"""Scorers and the composite reward against hand computations (EAPO.md §3)."""

from __future__ import annotations

import pytest

from eapo.rewards import SCORERS, RewardConfig, composite_reward


@pytest.mark.parametrize(
    "answer, gold, score, reason",
    [
        ("132", "132", 1.0, "match"),
        (" 132 ", "132", 1.0, "match"),
        ("+132", "132", 1.0, "match"),
        ("1,320", "1320", 1.0, "match"),
        ("-5", "-5", 1.0, "match"),
        ("131", "132", 0.0, "mismatch"),
        ("13 or 132", "132", 0.0, "ambiguous"),
        ("abc", "132", 0.0, "no_integer"),
        (None, "132", 0.0, "no_answer"),
    ],
)
def test_integer_scorer(answer, gold, score, reason):
    r = SCORERS.get("integer")(answer, gold)
    assert (r.score, r.reason) == (score, reason)


@pytest.mark.parametrize(
    "score, well_formed, consults, coef, apply_to, reward, penalty",
    [
        (1.0, True, 0, 0.0, "success", 1.0, 0.0),
        (1.0, True, 3, 0.05, "success", 0.85, 0.15),
        (0.0, True, 3, 0.05, "success", 0.1, 0.0),  # failures pay nothing (EAPO.md §8)
        (0.0, True, 3, 0.05, "all", -0.05, 0.15),
        (0.0, False, 0, 0.0, "success", 0.0, 0.0),
        (0.5, False, 1, 0.1, "success", 0.4, 0.1),  # partial credit (F1) counts as success
    ],
)
def test_composite_reward(score, well_formed, consults, coef, apply_to, reward, penalty):
    assert composite_reward(score, well_formed, consults, coef, apply_to, RewardConfig()) == pytest.approx(
        (reward, penalty))


def test_unknown_scorer_lists_valid_names():
    with pytest.raises(KeyError, match=r"valid: .*exact.*integer"):
        SCORERS.get("nope")
