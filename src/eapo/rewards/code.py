"""Score code completions by running their unit tests in the sandbox (HumanEval).

The program is built exactly as openai/human-eval builds it:
`prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"`, and it passes
when that program exits with status 0 within the time limit.

Deliberately not in `SCORERS`: a code scorer needs the problem's tests, not a gold string,
so it does not fit `score(answer, gold)`. `CODE_SCORER` is exposed for whoever wires code
tasks (a benchmark adapter passes the problem dict).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eapo.rewards.sandbox import run_program
from eapo.rewards.scorers import ScoreResult


def humaneval_program(completion: str, problem: Mapping[str, Any]) -> str:
    """The program the original harness runs for one completion."""
    return (
        problem["prompt"]
        + completion
        + "\n"
        + problem["test"]
        + "\n"
        + f"check({problem['entry_point']})"
    )


def score_humaneval(
    completion: str | None, problem: Mapping[str, Any], timeout_s: float = 5.0
) -> ScoreResult:
    """1.0 if the completion passes the problem's tests in the sandbox, else 0.0.

    `reason` is the sandbox status ("passed", "failed", "timeout", "memory",
    "output_limit", "error") or "no_answer"; `extracted` is the completion.
    """
    if completion is None:
        return ScoreResult(0.0, None, "no_answer")
    result = run_program(humaneval_program(completion, problem), timeout_s=timeout_s)
    return ScoreResult(1.0 if result.ok else 0.0, completion, result.status)


CODE_SCORER = score_humaneval
