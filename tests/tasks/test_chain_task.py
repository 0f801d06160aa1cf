"""The built-in task: exact evaluation without eval(), disjoint seeded splits, oracle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eapo.tasks.arithmetic import ChainTask, chain_steps, evaluate_chain
from eapo.types import ExpertRequest


@pytest.mark.parametrize("expr, value", [("47+38", 85), ("85-19", 66), ("47+38-19+66", 132), (" 1 + 2 ", 3),
                                         ("5", None), ("__import__('os')", None), ("1+", None), ("2*3", None)])
def test_evaluate_chain(expr, value):
    assert evaluate_chain(expr) == value


@given(st.text(max_size=40))
def test_evaluate_chain_never_raises(text):
    evaluate_chain(text)


def test_splits_are_fixed_disjoint_and_correct():
    task = ChainTask(min_len=2, max_len=4, seed=3, sizes=(("train", 300), ("val", 50), ("test", 50)))
    splits = {n: task.split(n) for n in ("train", "val", "test")}
    assert splits["test"] == ChainTask(min_len=2, max_len=4, seed=3, sizes=task.sizes).split("test")
    qs = [p.question for ps in splits.values() for p in ps]
    assert len(qs) == len(set(qs))
    for p in splits["train"]:
        assert evaluate_chain(p.question) == int(p.answer)
        assert 2 <= p.meta["length"] <= 4
        assert all(0 <= r <= task.max_value for *_, r in chain_steps(p.question))
    with pytest.raises(KeyError, match="valid"):
        task.split("dev")


def test_oracle_answers_sub_expressions_only():
    task = ChainTask()
    assert task.oracle_answer(ExpertRequest(problem="47+38-19", query="47+38")) == "85"
    assert task.oracle_answer(ExpertRequest(problem="47+38-19", query="what is the answer")) == "?"


def test_solution_text_reaches_the_answer():
    pieces = ChainTask.solution_text("47+38-19", frozenset({1}))
    policy = "".join(t for t, is_policy in pieces if is_policy)
    assert policy.endswith("<answer>66</answer>")
    assert [t for t, is_policy in pieces if not is_policy] == ['\n<expert id="0">66</expert>\n']
