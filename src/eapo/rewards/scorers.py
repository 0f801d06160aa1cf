"""Scorers: `score(answer, gold) -> ScoreResult` in [0, 1] (EAPO.md §3).

Each scorer is a small pure function registered by name, so a task or a benchmark names
its scorer in configuration. Benchmark scorers (math-verify, choice letters, F1, code in a
sandbox) join this registry in the benchmarks layer; the built-in task needs only exact
integers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from eapo.registry import Registry


@dataclass(frozen=True)
class ScoreResult:
    score: float
    extracted: str | None
    reason: str


Scorer = Callable[[str | None, str], ScoreResult]
SCORERS: Registry[Scorer] = Registry("scorer")

_INT = re.compile(r"[-+]?\d[\d,]*")


def _normalise(text: str) -> str:
    return " ".join(text.strip().lower().split())


@SCORERS.register("exact")
def exact_score(answer: str | None, gold: str) -> ScoreResult:
    """Whitespace- and case-insensitive string equality.

    >>> exact_score(" Paris ", "paris").score
    1.0
    """
    if answer is None:
        return ScoreResult(0.0, None, "no_answer")
    ok = _normalise(answer) == _normalise(gold)
    return ScoreResult(1.0 if ok else 0.0, answer.strip(), "match" if ok else "mismatch")


@SCORERS.register("integer")
def integer_score(answer: str | None, gold: str) -> ScoreResult:
    """The answer must be exactly one integer equal to the gold one (thousands commas and a
    leading plus allowed). Several integers in the answer is a mismatch, not a guess.

    >>> integer_score("132", "132").score
    1.0
    >>> integer_score("13 or 132", "132").reason
    'ambiguous'
    """
    if answer is None:
        return ScoreResult(0.0, None, "no_answer")
    found = _INT.findall(answer)
    if not found:
        return ScoreResult(0.0, None, "no_integer")
    if len(found) > 1:
        return ScoreResult(0.0, answer.strip(), "ambiguous")
    try:
        value = int(found[0].replace(",", ""))
        target = int(gold.replace(",", "").strip())
    except ValueError:
        return ScoreResult(0.0, found[0], "unparseable")
    ok = value == target
    return ScoreResult(1.0 if ok else 0.0, str(value), "match" if ok else "mismatch")
