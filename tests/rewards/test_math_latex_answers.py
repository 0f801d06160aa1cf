r"""The "math" scorer on LaTeX answers as the rollout engine hands them over: the content of
the box or answer tag, without `$` (`Episode.answer` is `2\sqrt{3}`, not `\boxed{2\sqrt{3}}`).

Such an answer must read as the LaTeX it is, exactly as the boxed completion does; read as
plain text, math-verify finds `2` in `2\sqrt{3}` (a near miss of gold 2 then "matches") and
nothing at all in `\sqrt{12}` or `\dfrac{68}{2}`. The first table needs no data; the second
scores every gold of the real benchmark files against itself and is skipped without them.
"""

from __future__ import annotations


import pytest

from eapo.rewards.math import math_score

# (answer as the engine passes it, gold, expected score)
FORMS = [
    (r"2\sqrt{3}", r"2\sqrt{3}", 1.0),
    (r"\sqrt{12}", r"2\sqrt{3}", 1.0),
    (r"2\sqrt3", r"\sqrt{12}", 1.0),
    (r"\dfrac{68}{2}", "34", 1.0),
    (r"\frac{1}{2}", "0.5", 1.0),
    ("0.5", r"\frac{1}{2}", 1.0),
    (r"\dfrac12", r"\frac{1}{2}", 1.0),
    (r"\frac12", "0.5", 1.0),
    ("1/2", r"\dfrac{1}{2}", 1.0),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3, \pi/2)", 1.0),
    (r"30^\circ", "30", 1.0),
    (r"\$2,\!125", "2125", 1.0),
    ("034", "34", 1.0),  # the integer fast path, as for AIME's three-digit form
    ("x=5", "5", 1.0),
    # near misses
    ("2", r"2\sqrt{3}", 0.0),
    (r"2\sqrt{3}", "2", 0.0),  # read as plain text this was `2`, a match
    (r"3\sqrt{2}", r"2\sqrt{3}", 0.0),
    (r"\sqrt{13}", r"2\sqrt{3}", 0.0),
    (r"\dfrac{68}{3}", "34", 0.0),
    (r"\frac{1}{3}", "0.5", 0.0),
    ("0.51", r"\frac{1}{2}", 0.0),
    (r"2\sqrt{3", "2", 0.0),  # an unclosed brace is not read as its leading 2
    ("35", "34", 0.0),
    ("340", "34", 0.0),
]


@pytest.mark.parametrize("answer,gold,expected", FORMS)
def test_an_unboxed_latex_answer_scores_like_the_boxed_one(answer, gold, expected):
    unboxed, boxed = math_score(answer, gold), math_score(rf"so \boxed{{{answer}}}", gold)
    assert unboxed.score == expected, unboxed
    assert boxed.score == expected, boxed
    assert unboxed.reason in (("match",) if expected else ("mismatch", "unparseable"))


@pytest.mark.parametrize("completion,gold,expected", [
    ("She makes 9 * 2 = 18 dollars, so the answer is 18", "18", 1.0),
    ("so it is 5", "5", 1.0),  # short prose is still read as text, not as a product of symbols
    ("so it is 6", "5", 0.0),
    ("10 cm", "10", 1.0),
])
def test_whole_completions_without_a_box_are_still_read_as_text(completion, gold, expected):
    assert math_score(completion, gold).score == expected


def test_the_integer_fast_path_holds_for_unboxed_answers():
    big = "1" * 400  # sympy would be slow on this; the int path is exact
    assert math_score(big, big).score == 1.0
    assert math_score(big + "2", big).score == 0.0


@pytest.mark.parametrize("file", ["math500.jsonl", "aime2024.jsonl", "aime2025.jsonl", "gsm8k_test.jsonl"])
def test_every_gold_scores_against_itself_boxed_and_unboxed(file, benchmark_rows):
    golds = [str(row["answer"]) for row in benchmark_rows(file)]
    assert golds
    wrong = [g for g in golds
             if math_score(rf"The answer is \boxed{{{g}}}.", g).score != 1.0 or math_score(g, g).score != 1.0]
    assert wrong == []


def test_every_math500_gold_is_read_by_math_verify_as_latex(benchmark_rows):
    # `\displaystyle` defeats the text fast path, so each answer goes through math-verify's
    # LaTeX reading of both sides; read as plain text, most of these came back unparseable
    golds = [str(row["answer"]) for row in benchmark_rows("math500.jsonl")]
    assert len(golds) == 500
    wrong = [g for g in golds if math_score(rf"\displaystyle {g}", g).score != 1.0]
    assert wrong == []
