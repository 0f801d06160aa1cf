"""Score code completions by running their unit tests in the sandbox (HumanEval).

The program is built exactly as openai/human-eval builds it:
`prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"`, and it passes
when that program exits with status 0 within the time limit.

`completion_from_answer` turns what a policy wrote as its answer (through the protocol's
answer block, possibly inside a Markdown code fence) into that completion, so `eapo eval`
and `eapo score` judge code the same way. Two forms are accepted:
  - the whole function (a top-level `def <entry_point>(` line): it is appended after the
    prompt, where it replaces the prompt's docstring-only definition while the prompt's
    imports and helper functions stay; EvalPlus reads chat models' code the same way;
  - a body only: it is indented under the prompt's `def` line. The protocol's parser strips
    the answer's surrounding whitespace, so a body's first line has lost its indent; of the
    readings "first line back at 4 spaces" and "the whole body indented by 4", the first
    that compiles after the prompt is taken (`compile` only builds bytecode: nothing runs,
    and CPython caps the constants it folds, so a hostile answer cannot make it costly).

Deliberately not in `SCORERS`: a code scorer needs the problem's tests, not a gold string,
so it does not fit `score(answer, gold)`. `CODE_SCORER` takes the problem dict instead.
"""

from __future__ import annotations

import re
import textwrap
import warnings
from collections.abc import Mapping
from typing import Any

from eapo.rewards.sandbox import run_program
from eapo.rewards.scorers import ScoreResult

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)
_INDENT = "    "


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


def fenced_code(text: str) -> str | None:
    """The content of the first Markdown code fence in `text` (an unclosed fence runs to the
    end), or None without a fence. A fence labelled with a language other than Python
    is skipped when a Python (or unlabelled) one exists.

    >>> fenced_code("Here:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1\\n'
    >>> fenced_code("no code") is None
    True
    """
    blocks = _FENCE.findall(text)
    if not blocks:
        return None
    for lang, body in blocks:
        if lang.lower() in ("", "python", "py", "python3"):
            return body
    return blocks[0][1]


def _compiles(source: str) -> bool:
    # compile, not ast.parse: "'return' outside function" is the compiler's error, and it
    # is exactly what a body that lost its indentation produces.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<completion>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False
    return True


def completion_from_answer(answer: str | None, problem: Mapping[str, Any]) -> tuple[str | None, str]:
    """`(completion, form)`: the code to append to `problem["prompt"]`, and how it was read
    ("function", "body", or "none" when there is no answer).

    >>> p = {"prompt": "def f(x):\\n    \\"\\"\\"Twice x.\\"\\"\\"\\n", "entry_point": "f"}
    >>> completion_from_answer("```python\\ndef f(x):\\n    return 2 * x\\n```", p)
    ('\\ndef f(x):\\n    return 2 * x\\n', 'function')
    >>> completion_from_answer("y = 2 * x\\n    return y", p)
    ('    y = 2 * x\\n    return y\\n', 'body')
    """
    if answer is None or not answer.strip():
        return None, "none"
    code = fenced_code(answer)
    code = (answer if code is None else code).strip("\n")
    if not code.strip():
        return None, "none"
    entry = re.escape(str(problem["entry_point"]))
    if re.search(rf"^(async\s+)?def\s+{entry}\s*\(", code, re.M):
        return "\n" + textwrap.dedent(code).rstrip() + "\n", "function"
    lines = code.splitlines()
    first_back = "\n".join([_INDENT + lines[0].lstrip(), *lines[1:]]) + "\n"
    whole = textwrap.indent(textwrap.dedent(code), _INDENT) + "\n"
    for candidate in (first_back, whole):
        if _compiles(problem["prompt"] + candidate):
            return candidate, "body"
    return first_back, "body"
