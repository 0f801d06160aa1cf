"""The acceptance coin: calibrated, deterministic, keyed at the chosen granularity, and
exact at rho = 0 and rho = 1."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eapo.schedules.gate import GRANULARITIES, AcceptanceGate, accept

N = 10_000


def _trial_args(granularity: str, i: int) -> tuple[str, str, int]:
    # Distinct keys for each trial under every granularity.
    if granularity == "episode":
        return f"ep-{i}", "same question", 0
    if granularity == "question":
        return "ep-0", f"question number {i}", 0
    return "ep-0", "same question", i


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_acceptance_fraction_matches_rho(granularity, rho):
    gate = AcceptanceGate(seed=1234, granularity=granularity)
    accepted = sum(gate.decide(*_trial_args(granularity, i), rho)[0] for i in range(N))
    sd = math.sqrt(rho * (1 - rho) / N)
    assert abs(accepted / N - rho) <= 3 * sd


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_draws_are_uniform_on_the_unit_interval(granularity):
    gate = AcceptanceGate(seed=7, granularity=granularity)
    us = [gate.draw(*_trial_args(granularity, i)) for i in range(N)]
    assert all(0.0 <= u < 1.0 for u in us)
    # Each decile holds about a tenth of the draws.
    counts = [0] * 10
    for u in us:
        counts[int(u * 10)] += 1
    sd = math.sqrt(N * 0.1 * 0.9)
    assert all(abs(c - N / 10) <= 4 * sd for c in counts)


def test_question_granularity_ignores_case_spacing_and_trailing_punctuation():
    gate = AcceptanceGate(seed=3, granularity="question")
    variants = [
        "What is 17 * 23?",
        "what is 17 * 23",
        "  WHAT   is 17 *\n23 ?? ",
        "What is 17 * 23.",
    ]
    draws = {gate.draw("ep-1", q, i) for i, q in enumerate(variants)}
    assert len(draws) == 1


def test_question_granularity_separates_questions_and_episodes():
    gate = AcceptanceGate(seed=3, granularity="question")
    base = gate.draw("ep-1", "what is 17 * 23", 0)
    assert gate.draw("ep-1", "what is 17 * 24", 0) != base
    assert gate.draw("ep-2", "what is 17 * 23", 0) != base


def test_episode_granularity_gives_one_draw_per_episode():
    gate = AcceptanceGate(seed=3, granularity="episode")
    draws = {gate.draw("ep-1", q, i) for i, q in enumerate(["a", "b", "c"])}
    assert len(draws) == 1
    assert gate.draw("ep-2", "a", 0) not in draws


def test_reply_granularity_draws_afresh_for_each_reply():
    gate = AcceptanceGate(seed=3, granularity="reply")
    draws = [gate.draw("ep-1", "same question", i) for i in range(100)]
    assert len(set(draws)) == 100
    # The same reply index gives the same draw (resume is exact), whatever the query.
    assert gate.draw("ep-1", "another question", 5) == draws[5]


def test_reply_granularity_draws_are_independent():
    # Asking twice is accepted at least once with probability 1 - (1 - rho)^2: the
    # re-asking loophole of EAPO.md §8 that the other granularities close.
    gate = AcceptanceGate(seed=11, granularity="reply")
    rho, n = 0.5, N
    both = sum(
        accept(gate.draw(f"ep-{i}", "q", 0), rho) and accept(gate.draw(f"ep-{i}", "q", 1), rho) for i in range(n)
    )
    p = rho * rho
    assert abs(both / n - p) <= 3 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("granularity", ["question", "episode"])
def test_reasking_cannot_beat_the_coin(granularity):
    gate = AcceptanceGate(seed=5, granularity=granularity)
    for i in range(200):
        decisions = {gate.decide(f"ep-{i}", "What is x?", k, 0.5)[0] for k in range(10)}
        assert len(decisions) == 1


def test_seed_changes_the_draws_and_the_same_seed_repeats_them():
    a, b = AcceptanceGate(seed=1), AcceptanceGate(seed=2)
    assert a.draw("ep", "q", 0) != b.draw("ep", "q", 0)
    assert a.draw("ep", "q", 0) == AcceptanceGate(seed=1).draw("ep", "q", 0)


@pytest.mark.parametrize(
    "granularity, query, reply_index, expected",
    [
        ("question", "What is 2+2?", 0, 0.9535656668397838),
        ("question", "what is 2+2", 3, 0.9535656668397838),
        ("reply", "x", 3, 0.7979441156394079),
        ("episode", "x", 3, 0.07014810773580271),
    ],
)
def test_draws_are_pinned_across_versions(granularity, query, reply_index, expected):
    # The hash is the record of which replies a run accepted: changing it silently would
    # make a resumed run decide differently. Update these values only on purpose.
    assert AcceptanceGate(seed=0, granularity=granularity).draw("uid-0", query, reply_index) == expected


@given(st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_rho_zero_never_accepts_and_rho_one_always_does(u):
    assert accept(u, 0.0) is False
    assert accept(u, 1.0) is True


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_rho_ends_are_exact_over_many_draws(granularity):
    gate = AcceptanceGate(seed=9, granularity=granularity)
    for i in range(2000):
        args = _trial_args(granularity, i)
        assert gate.decide(*args, 0.0)[0] is False
        assert gate.decide(*args, 1.0)[0] is True


@pytest.mark.parametrize("rho", [-0.1, 1.1, float("nan")])
def test_accept_refuses_rates_outside_the_unit_interval(rho):
    with pytest.raises(ValueError, match="rho"):
        accept(0.5, rho)


def test_gate_validation_names_the_field():
    with pytest.raises(ValueError, match=r"AcceptanceGate\.granularity.*reply, question, episode"):
        AcceptanceGate(seed=0, granularity="turn")
    with pytest.raises(TypeError, match=r"AcceptanceGate\.seed"):
        AcceptanceGate(seed="0")  # type: ignore[arg-type]
