"""Reading a policy's code answer back into the completion HumanEval runs
(eapo.rewards.code.completion_from_answer): table-driven forms, and every canonical
solution passing in the sandbox both as a whole function and as a body whose first line
lost its indent (what the protocol's parser hands over). Data: skipped without it."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from eapo.evaluation.benchmarks import load_benchmark
from eapo.rewards.code import completion_from_answer, fenced_code, score_humaneval

P = {"prompt": 'import math\n\n\ndef f(xs):\n    """Sum of squares."""\n', "entry_point": "f"}
BODY = "    total = 0\n    for x in xs:\n        total += x * x\n    return total\n"


@pytest.mark.parametrize("answer, completion, form", [
    (BODY, BODY, "body"),
    (BODY.strip(), BODY, "body"),  # first line's indent stripped by the parser
    ("total = 0\nfor x in xs:\n    total += x * x\nreturn total", BODY, "body"),  # body dedented as a whole
    ("```python\n" + BODY + "```", BODY, "body"),
    ("def f(xs):\n" + BODY, "\ndef f(xs):\n" + BODY, "function"),
    ("Sure:\n```py\nimport math\ndef f(xs):\n" + BODY + "```\nDone.", "\nimport math\ndef f(xs):\n" + BODY, "function"),
    ("```text\nnot code\n```\n```python\ndef f(xs):\n" + BODY + "```", "\ndef f(xs):\n" + BODY, "function"),
    ("```python\ndef f(xs):\n" + BODY, "\ndef f(xs):\n" + BODY, "function"),  # unclosed fence
    ("def g(xs):\n    return 0", "    def g(xs):\n        return 0\n", "body"),  # another function: a nested helper
    (None, None, "none"),
    ("  \n ", None, "none"),
    ("```python\n```", None, "none"),
])
def test_forms(answer, completion, form):
    assert completion_from_answer(answer, P) == (completion, form)


def test_completions_run_as_intended():
    for answer in (BODY.strip(), "def f(xs):\n" + BODY):
        completion, _ = completion_from_answer(answer, P)
        program = {**P, "test": "def check(c):\n    assert c([1, 2]) == 5"}
        assert score_humaneval(completion, program).reason == "passed"


def test_fence_without_language_and_none():
    assert fenced_code("a\n```\nx = 1\n```") == "x = 1\n"
    assert fenced_code("```js\nlet x\n```") == "let x\n"  # only a non-Python fence: still the code
    assert fenced_code("plain") is None


def test_every_canonical_solution_passes_in_both_answer_forms():
    try:
        rows = [{"prompt": p.question, "id": p.id, **p.meta} for p in load_benchmark("humaneval")]
    except (FileNotFoundError, OSError) as e:
        pytest.skip(f"benchmark data not available: {e}")
    assert len(rows) == 164

    def function(p):
        start = re.search(rf"^def {re.escape(p['entry_point'])}\(", p["prompt"], re.M).start()
        return "```python\n" + p["prompt"][start:] + p["canonical_solution"] + "```"

    jobs = [(p["canonical_solution"].strip(), p, "body") for p in rows] + [(function(p), p, "function") for p in rows]

    def run(job):
        answer, p, want = job
        completion, form = completion_from_answer(answer, p)
        return p["id"], want, form, score_humaneval(completion, p, timeout_s=10.0).reason

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, jobs))
    bad = [r for r in results if r[1] != r[2] or r[3] != "passed"]
    assert bad == []
