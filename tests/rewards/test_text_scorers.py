"""The "choice", "em" and "f1" scorers. EM/F1 expectations are computed by hand following
the official SQuAD v1.1 `evaluate-v1.1.py` (normalize_answer, f1_score,
exact_match_score); the arithmetic is in the comments, not in our code."""

from __future__ import annotations

import pytest

from eapo.rewards.scorers import SCORERS
from eapo.rewards.text import choice_score, em_score, extract_choice, f1_score, normalize_answer

# (prediction, gold, EM, F1)
SQUAD_FIXTURE = [
    ("The Eiffel Tower", "Eiffel Tower", 1.0, 1.0),  # "eiffel tower" both sides
    ("in Paris, France", "Paris", 0.0, 0.5),  # 1 shared of 3 | 1: 2(1/3)(1)/(4/3) = 1/2
    ("a cat sat on the mat", "the cat on a hat", 0.0, 4 / 7),  # [cat sat on mat] vs [cat on hat]: P=2/4 R=2/3
    ("New York-based", "New York based", 0.0, 0.4),  # [new yorkbased] vs [new york based]: P=1/2 R=1/3
    ("1,000 dollars", "1000", 0.0, 2 / 3),  # [1000 dollars] vs [1000]: P=1/2 R=1
    ("the the the", "the", 1.0, 0.0),  # both normalise to "": EM equal, F1 has no shared token
    ("cat cat dog", "cat dog dog", 0.0, 2 / 3),  # multiset overlap cat:1 dog:1 -> P=R=2/3
    ("Anthem", "the anthem", 1.0, 1.0),  # articles are dropped, case folded
    ("another one", "other one", 0.0, 0.5),  # "an" only as a whole word: [another one] vs [other one]
]


@pytest.mark.parametrize("pred,gold,em,f1", SQUAD_FIXTURE)
def test_squad_item(pred, gold, em, f1):
    assert em_score(pred, gold).score == em
    assert f1_score(pred, gold).score == pytest.approx(f1, abs=1e-12)


def test_squad_fixture_means():
    ems = [em_score(p, g).score for p, g, _, _ in SQUAD_FIXTURE]
    f1s = [f1_score(p, g).score for p, g, _, _ in SQUAD_FIXTURE]
    assert sum(ems) / len(ems) == pytest.approx(3 / 9)
    # 1 + 1/2 + 4/7 + 2/5 + 2/3 + 0 + 2/3 + 1 + 1/2 = 557/105, over 9 items
    assert sum(f1s) / len(f1s) == pytest.approx(557 / 945)


def test_normalize_answer_matches_squad():
    assert normalize_answer("  The   QUICK, brown fox!  ") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"


def test_f1_reasons_and_tag_extraction():
    assert f1_score("<answer>Paris</answer> though I said London", "Paris").reason == "match"
    assert f1_score("Paris, France", "Paris").reason == "partial"
    assert f1_score("London", "Paris").reason == "mismatch"
    assert em_score(None, "x").reason == "no_answer"
    assert f1_score("   ", "x").reason == "no_answer"


@pytest.mark.parametrize("text,letter", [
    ("B", "B"),
    ("(B)", "B"),
    ("B.", "B"),
    ("B) Paris", "B"),
    ("**C**", "C"),
    ("The answer is (B).", "B"),
    ("After some thought, the answer is D because ...", "D"),
    ("Answer: **A**", "A"),
    ("ANSWER: J", "J"),
    ("I compared (A) with (B); final answer: (C)", "C"),
    ("Options (A) and (D) fail, so **B**", "B"),
    ("<answer>C</answer>", "C"),
    ("<answer>(D) 42</answer>", "D"),
    (r"so \boxed{A}", "A"),
    (r"\boxed{\text{B}}", "B"),
    ("A good question with no pick", None),
    ("the answer is a bit unclear", None),
    ("", None),
])
def test_extract_choice(text, letter):
    assert extract_choice(text) == letter


@pytest.mark.parametrize("answer,gold,score,reason", [
    ("The answer is (B)", "B", 1.0, "match"),
    ("The answer is (B)", "C", 0.0, "mismatch"),
    ("I cannot tell", "C", 0.0, "unparseable"),
    (None, "C", 0.0, "no_answer"),
])
def test_choice_score(answer, gold, score, reason):
    r = choice_score(answer, gold)
    assert (r.score, r.reason) == (score, reason)


def test_registered():
    assert [SCORERS.get(n) for n in ("choice", "em", "f1")] == [choice_score, em_score, f1_score]
