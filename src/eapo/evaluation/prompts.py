"""What the policy is shown for a benchmark problem, by prompt template family.

The loader already writes the question of most families in full (a choice question with
its lettered options, a math problem as is); the rollout's system text then says how to
answer (the protocol's answer block, or a final `\\boxed{}` for math). A code problem is
different: its `question` is the start of a Python file (signature and docstring), which
the original harness gives a base model to continue. A policy that speaks the protocol is
a chat model, so it gets an instruction and the code in a fence, and answers with the
whole function (`eapo.rewards.code.completion_from_answer` reads it back into the
completion the harness runs).

Not here: the system text and tags (`eapo.protocol`), scoring (`eapo.rewards`).
"""

from __future__ import annotations

import dataclasses

from eapo.types import Problem

CODE_TEMPLATE = (
    "Complete the following Python function. Your answer must be the complete function, "
    "its def line included, as Python code.\n\n```python\n{prompt}```"
)


def eval_problem(problem: Problem) -> Problem:
    """`problem` with the question the policy sees (only code problems change).

    >>> p = eval_problem(Problem("h/0", "def f():\\n", "", {"template_family": "code"}))
    >>> p.question.endswith("```python\\ndef f():\\n```")
    True
    """
    if problem.meta.get("template_family") != "code":
        return problem
    prompt = problem.question if problem.question.endswith("\n") else problem.question + "\n"
    return dataclasses.replace(problem, question=CODE_TEMPLATE.format(prompt=prompt))
