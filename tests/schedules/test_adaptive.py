"""Adaptive per-problem acceptance: open while unaided success is rare, closed once the
policy solves a problem alone, forgetting beyond the window, checkpointable, and the
same state in every process whatever order the gathered outcomes arrive in."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eapo.schedules.adaptive import (
    AdaptiveConfig,
    Outcome,
    ProblemHistory,
    adaptive_rate,
    combine_rates,
    is_open,
)

CFG = AdaptiveConfig(window=4, threshold=0.25)


@pytest.mark.parametrize(
    "history, expected",
    [
        ([], 1.0),  # never seen alone: open
        ([False], 1.0),
        ([False] * 10, 1.0),
        ([True], 0.0),
        ([False, False, False, True], 0.0),  # 1/4 is not below 0.25
        ([True, False, False, False, False], 1.0),  # the success fell out of the window
    ],
)
def test_adaptive_rate(history, expected):
    assert adaptive_rate(history, CFG) == expected


def test_defaults_close_at_the_first_success_in_the_window():
    cfg = AdaptiveConfig()
    assert adaptive_rate([False] * 7, cfg) == 1.0
    assert adaptive_rate([False] * 7 + [True], cfg) == 0.0
    assert adaptive_rate([True] + [False] * 8, cfg) == 1.0


def test_min_samples_keeps_help_open_until_enough_evidence():
    cfg = AdaptiveConfig(window=8, threshold=0.5, min_samples=3)
    assert is_open([True, True], cfg)
    assert not is_open([True, True, False], cfg)


def test_open_and_closed_rates_are_configurable():
    cfg = AdaptiveConfig(open_rho=0.6, closed_rho=0.1)
    assert adaptive_rate([], cfg) == 0.6
    assert adaptive_rate([True], cfg) == 0.1


@pytest.mark.parametrize(
    "how, adaptive, base, expected",
    [("override", 1.0, 0.2, 1.0), ("min", 1.0, 0.2, 0.2), ("min", 0.0, 0.2, 0.0), ("product", 0.5, 0.4, 0.2)],
)
def test_combine_rates(how, adaptive, base, expected):
    assert combine_rates(adaptive, base, how) == pytest.approx(expected)


# --- ProblemHistory -----------------------------------------------------------------------


def test_open_below_threshold_then_closes_after_unaided_successes():
    h = ProblemHistory(CFG)
    assert h.rate("p", base_rho=0.3) == 1.0
    h.record("p", success=False, aided=False)
    assert h.rate("p", 0.3) == 1.0
    h.record("p", success=True, aided=False)
    assert h.rate("p", 0.3) == 0.0
    assert h.rate("other", 0.3) == 1.0  # per problem


def test_aided_outcomes_do_not_count():
    h = ProblemHistory(CFG)
    for _ in range(10):
        h.record("p", success=True, aided=True)  # solved with help: not the policy alone
        h.record("p", success=False, aided=True)
    assert h.history("p") == ()
    assert h.is_open("p")


def test_window_forgets_old_outcomes():
    h = ProblemHistory(CFG)
    h.record("p", True, False)
    assert not h.is_open("p")
    for _ in range(3):
        h.record("p", False, False)
    assert not h.is_open("p")  # 1/4 still in the window
    h.record("p", False, False)
    assert h.history("p") == (False,) * 4
    assert h.is_open("p")


@pytest.mark.parametrize("how, expected", [("override", 1.0), ("min", 0.3), ("product", 0.3)])
def test_rate_combines_with_the_global_rate(how, expected):
    h = ProblemHistory(AdaptiveConfig(combine=how))
    assert h.rate("p", base_rho=0.3) == pytest.approx(expected)


def test_rate_refuses_a_bad_base_rate():
    with pytest.raises(ValueError, match="base_rho"):
        ProblemHistory(CFG).rate("p", 1.5)


def test_state_dict_round_trips_through_json():
    h = ProblemHistory(CFG)
    for i, (pid, ok) in enumerate([("a", False), ("b", True), ("a", True), ("c", False), ("a", False)]):
        h.record(pid, ok, aided=False, step=i + 1)
    state = json.loads(json.dumps(h.state_dict()))
    g = ProblemHistory(CFG)
    g.load_state_dict(state)
    assert g.state_dict() == h.state_dict()
    for pid in ("a", "b", "c", "unseen"):
        assert g.rate(pid, 0.5) == h.rate(pid, 0.5)
        assert g.history(pid) == h.history(pid)


def test_loading_into_a_smaller_window_keeps_the_most_recent():
    big = ProblemHistory(AdaptiveConfig(window=8))
    for ok in [True, False, False, False, False]:
        big.record("p", ok, False)
    small = ProblemHistory(AdaptiveConfig(window=4))
    small.load_state_dict(big.state_dict())
    assert small.history("p") == (False,) * 4


def test_load_refuses_foreign_state():
    with pytest.raises(ValueError, match="ProblemHistory"):
        ProblemHistory(CFG).load_state_dict({"recent": {}})


def test_summary():
    h = ProblemHistory(CFG)
    assert h.summary() == {"adaptive/problems": 0.0, "adaptive/open_fraction": 1.0}
    h.record("a", True, False)
    h.record("b", False, False)
    assert h.summary() == {"adaptive/problems": 2.0, "adaptive/open_fraction": 0.5}


# --- distributed: records as plain tuples, merge order-independent -----------------------


outcomes = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=5),
        st.sampled_from(["p1", "p2", "p3"]),
        st.text(alphabet="abc", max_size=3),
        st.booleans(),
        st.booleans(),
    ),
    max_size=40,
)


@given(outcomes, st.randoms(use_true_random=False))
def test_merge_is_order_independent(records, rnd):
    shuffled = list(records)
    rnd.shuffle(shuffled)
    a, b = ProblemHistory(CFG), ProblemHistory(CFG)
    a.merge(records)
    b.merge(shuffled)
    assert a.state_dict() == b.state_dict()


def test_group_split_across_processes_gives_every_process_the_same_state():
    # A group of 8 episodes of one problem, split over 3 processes: each builds the
    # outcomes of its own episodes; the gathered lists arrive in rank order on some
    # processes and in another order on others.
    group = [Outcome(7, "p", f"uid-{i}", success=(i == 5), aided=(i % 3 == 0)) for i in range(8)]
    per_rank = [group[0:3], group[3:6], group[6:8]]
    states = []
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        h = ProblemHistory(AdaptiveConfig(window=8))
        counted = h.merge([o for r in order for o in per_rank[r]])
        assert counted == 5  # uid-0, uid-3, uid-6 were aided
        states.append(h.state_dict())
    assert states[0] == states[1] == states[2]
    assert states[0]["recent"]["p"] == [False, False, False, True, False]  # uid-1, 2, 4, 5, 7


def test_merge_accepts_records_that_crossed_json():
    o = Outcome(3, "p", "u", True, False)
    sent = json.loads(json.dumps([o]))  # a list of lists after the trip
    h = ProblemHistory(CFG)
    assert h.merge(sent) == 1
    assert h.history("p") == (True,)


def test_record_returns_a_sendable_outcome():
    h = ProblemHistory(CFG)
    o = h.record("p", True, False, step=2, uid="x")
    assert o == (2, "p", "x", True, False)
    assert type(o).__mro__[1] is tuple


def test_merge_refuses_malformed_records():
    with pytest.raises(ValueError, match="outcome record"):
        ProblemHistory(CFG).merge([("p", True)])


def test_merge_is_the_same_as_recording_one_by_one_in_order():
    rnd = random.Random(0)
    records = [
        Outcome(step, rnd.choice("xyz"), str(step), rnd.random() < 0.3, rnd.random() < 0.3) for step in range(1, 60)
    ]
    a, b = ProblemHistory(CFG), ProblemHistory(CFG)
    a.merge(records)
    for o in records:
        b.record(o.problem_id, o.success, o.aided, step=o.step, uid=o.uid)
    assert a.state_dict() == b.state_dict()


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"window": 0}, "window"),
        ({"min_samples": 0}, "min_samples"),
        ({"window": 4, "min_samples": 5}, "min_samples"),
        ({"threshold": 1.5}, "threshold"),
        ({"open_rho": -0.1}, "open_rho"),
        ({"closed_rho": 2}, "closed_rho"),
        ({"combine": "max"}, "combine"),
    ],
)
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"AdaptiveConfig\.{field}"):
        AdaptiveConfig(**kwargs)
