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


def test_tutor_answers_the_step_the_policy_is_at_whatever_it_asked():
    tutor = ChainTask(oracle="tutor")
    problem = "35+23+63+55+60"  # running values 58, 121, 176, 236

    def ask(transcript, query="x"):
        return tutor.oracle_answer(ExpertRequest(problem=problem, query=query, transcript=transcript))

    assert ask("<consult><query>35+23</query></consult>") == "58"  # step 0, nothing written yet
    # two steps written, the second one wrong, and the operand of step 2 misread in the query:
    # the literal oracle would answer 111+50=161; the tutor gives step 2's true value
    assert ask("35+23=58 58+63=111 <consult><query>111+50</query></consult>", "111+50") == "176"
    assert ChainTask().oracle_answer(ExpertRequest(problem=problem, query="111+50")) == "161"
    # replies and queries carry no "=", so an earlier consultation does not count as a step
    assert ask('35+23=58 <consult><query>58+63</query></consult>\n<expert id="0">121</expert>\n'
               "58+63=121 <consult><query>121+55</query></consult>") == "176"
    assert ask("35+23=58 58+63=121 121+55=176 176+60=236 <consult><query>236+1</query></consult>") == "?"  # past the end
    assert ask(None) == "?"  # the tutor needs the transcript
    with pytest.raises(ValueError, match="oracle"):
        ChainTask(oracle="guess")


def test_step_oracle_does_the_current_step_right_from_the_policys_own_running_value():
    step = ChainTask(oracle="step")
    problem = "35+23+63+55+60"

    def ask(transcript):
        return step.oracle_answer(ExpertRequest(problem=problem, query="111+50", transcript=transcript))

    assert ask("<consult><query>35+23</query></consult>") == "58"
    # the policy slipped to 111 at step 1 and misread step 2's operand in its query: the
    # reply reads +55 from the problem (111+55) but keeps the slip; only the tutor repairs it
    assert ask("35+23=58 58+63=111 <consult><query>111+50</query></consult>") == "166"
    assert ChainTask(oracle="tutor").oracle_answer(
        ExpertRequest(problem=problem, query="111+50", transcript="35+23=58 58+63=111 <consult>")) == "176"
    assert ask('35+23=58 <consult><query>58+63</query></consult>\n<expert id="0">121</expert>\n58+63=121 <consult>') == "176"
    assert ask("35+23=58 58+63=121 121+55=176 176+60=236 <consult>") == "?"
    assert ask(None) == "?"
