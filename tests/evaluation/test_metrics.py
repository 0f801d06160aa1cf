"""pass@k and the evaluation summary against references that are slow but obviously right:
every k-subset of the samples enumerated, in exact fractions."""

from __future__ import annotations

import itertools
import math
import statistics
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eapo.evaluation.metrics import is_correct, pass_at_k, summarize


def brute_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Share of the k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_matches_brute_force(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_pass_at_k(n, c, k)), abs=1e-12)


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (1, 0, 1, 0.0),
        (1, 1, 1, 1.0),
        (4, 2, 1, 0.5),
        (4, 2, 2, 5 / 6),
        (4, 1, 2, 0.5),
        (4, 2, 3, 1.0),
        (10, 3, 1, 0.3),  # pass@1 is the plain accuracy
        (32, 0, 32, 0.0),
        (32, 1, 32, 1.0),
    ],
)
def test_hand_cases(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_large_n_is_stable():
    # C(1000, 500) overflows a float; the product form must not.
    exact = 1 - Fraction(math.comb(600, 500), math.comb(1000, 500))
    assert pass_at_k(1000, 400, 500) == pytest.approx(float(exact), abs=1e-12)
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)


@pytest.mark.parametrize("n, c, k", [(3, 1, 4), (3, 4, 1), (3, 1, 0), (0, 0, 1), (3, -1, 1)])
def test_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_in_unit_interval_and_monotone(args):
    n, c, k = args
    p = pass_at_k(n, c, k)
    assert 0.0 <= p <= 1.0
    if k < n:
        assert pass_at_k(n, c, k + 1) >= p
    if c < n:
        assert pass_at_k(n, c + 1, k) >= p


def test_is_correct_threshold():
    assert is_correct(1.0) and is_correct(1.0 - 1e-12)
    assert not is_correct(0.99) and not is_correct(0.0)


def test_summarize_hand_case():
    m = summarize({"a": [1, 1, 1, 1], "b": [0, 0, 0, 0], "c": [1, 0, 1, 0]}, ks=(1, 2, 4))
    assert m["avg@n"] == pytest.approx(0.5)
    assert m["pass@1"] == pytest.approx(0.5)
    assert m["pass@2"] == pytest.approx((1 + 0 + 5 / 6) / 3)
    assert m["pass@4"] == pytest.approx(2 / 3)
    assert m["var"] == pytest.approx(0.25 / 3)
    assert m["std_of_mean"] == pytest.approx(statistics.stdev([1, 0, 0.5]) / math.sqrt(3))
    assert m["n"] == 4 and m["problems"] == 3


def test_partial_scores_count_in_avg_but_not_in_pass():
    m = summarize({"a": [0.5, 1.0], "b": [0.8, 0.8]}, ks=(1, 2))
    assert m["avg@n"] == pytest.approx((0.75 + 0.8) / 2)
    assert m["pass@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["pass@2"] == pytest.approx(0.5)
    assert m["var"] == pytest.approx((0.0625 + 0.0) / 2)


def test_summarize_one_problem_and_uneven_counts():
    assert summarize({"a": [1.0]}, ks=(1,))["std_of_mean"] == 0.0
    m = summarize({"a": [1, 0, 0], "b": [1, 1]}, ks=(1, 2))
    assert m["n"] == 2
    assert m["pass@2"] == pytest.approx((pass_at_k(3, 1, 2) + 1.0) / 2)
    with pytest.raises(ValueError, match="k"):
        summarize({"a": [1, 0, 0], "b": [1, 1]}, ks=(3,))


@pytest.mark.parametrize("bad", [{}, {"a": []}, {"a": [1.5]}, {"a": [-0.1]}])
def test_summarize_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        summarize(bad, ks=(1,))


@given(st.lists(st.lists(st.sampled_from([0.0, 0.25, 1.0]), min_size=4, max_size=4), min_size=1, max_size=6))
def test_summarize_ranges(rows):
    m = summarize({f"p{i}": r for i, r in enumerate(rows)}, ks=(1, 2, 4))
    assert 0 <= m["pass@1"] <= m["pass@2"] <= m["pass@4"] <= 1
    assert 0 <= m["avg@n"] <= 1 and 0 <= m["var"] <= 0.25 + 1e-12 and m["std_of_mean"] >= 0
    assert m["pass@1"] <= m["avg@n"] + 1e-12  # partial credit adds to avg, never to pass
