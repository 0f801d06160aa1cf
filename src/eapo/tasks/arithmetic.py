"""The built-in task: chains of additions and subtractions, e.g. `47+38-19+66`.

Chosen because a tiny model trained from scratch on CPU can learn it in minutes, the answer
is verifiable exactly, the difficulty is one knob (chain length), and an expert can supply
any sub-result: a query such as `85-19` has one right reply. The policy writes its steps
(`47+38=85 85-19=66 66+66=132`) and then `<answer>132</answer>`, or consults for a step.

Deliberately not here: the warm-start data and the difficulty levels used for training
comparisons (the training layer builds those from `ChainTask.solution_text`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from eapo.types import ExpertRequest, Problem

_TERM = re.compile(r"\s*([+-]?)\s*(\d+)")
_EXPR = re.compile(r"^\s*\d+(\s*[+-]\s*\d+)+\s*$")
UNKNOWN_REPLY = "?"


def evaluate_chain(expr: str) -> int | None:
    """Left-to-right value of `a+b-c...`, or None when `expr` is not such a chain.

    Parsed by hand (never `eval`): queries are untrusted model output."""
    if not _EXPR.match(expr):
        return None
    total = 0
    for sign, num in _TERM.findall(expr):
        total = total - int(num) if sign == "-" else total + int(num)
    return total


def chain_steps(question: str) -> list[tuple[int, str, int, int]]:
    """The chain as steps `(a, op, b, result)` with the running value as `a`."""
    terms = _TERM.findall(question)
    value = int(terms[0][1])
    steps = []
    for sign, num in terms[1:]:
        b = int(num)
        new = value - b if sign == "-" else value + b
        steps.append((value, sign or "+", b, new))
        value = new
    return steps


@dataclass(frozen=True)
class ChainTask:
    """Chains of `min_len..max_len` operations on 2-digit operands, running value in
    0..`max_value`. Splits are disjoint and fixed by `seed`."""

    name: str = "chain"
    min_len: int = 1
    max_len: int = 3
    max_value: int = 999
    seed: int = 0
    sizes: tuple[tuple[str, int], ...] = (("train", 2000), ("val", 200), ("test", 400))
    scorer: str = "integer"

    def __post_init__(self) -> None:
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got {self.min_len}, {self.max_len}")

    def _problem(self, rng: random.Random) -> tuple[str, int]:
        length = rng.randint(self.min_len, self.max_len)
        value = rng.randint(10, 99)
        text = str(value)
        for _ in range(length):
            b = rng.randint(10, 99)
            minus = rng.random() < 0.5
            if minus and value - b < 0:
                minus = False
            if not minus and value + b > self.max_value:
                minus = True
            value = value - b if minus else value + b
            text += f"{'-' if minus else '+'}{b}"
        return text, value

    def split(self, name: str) -> list[Problem]:
        sizes = dict(self.sizes)
        if name not in sizes:
            raise KeyError(f"unknown split {name!r}; valid: {', '.join(sizes)}")
        # Splits are drawn in a fixed order from one stream with duplicates removed, so
        # no test question is ever a training question.
        rng = random.Random(f"{self.name}:{self.seed}:{self.min_len}-{self.max_len}")
        seen: set[str] = set()
        out: dict[str, list[Problem]] = {}
        for split_name, size in self.sizes:
            problems: list[Problem] = []
            tries = 0
            while len(problems) < size:
                tries += 1
                if tries > 50 * size + 1000:
                    raise ValueError(f"cannot draw {size} distinct problems for split {split_name!r}")
                q, a = self._problem(rng)
                if q in seen:
                    continue
                seen.add(q)
                problems.append(
                    Problem(id=f"{self.name}-{split_name}-{len(problems):05d}", question=q, answer=str(a),
                            meta={"length": len(chain_steps(q))})
                )
            out[split_name] = problems
            if split_name == name:
                return problems
        return out[name]

    def oracle_answer(self, request: ExpertRequest) -> str:
        value = evaluate_chain(request.query)
        return UNKNOWN_REPLY if value is None else str(value)

    @staticmethod
    def solution_text(
        question: str,
        consult_steps: frozenset[int] = frozenset(),
        *,
        refused_steps: frozenset[int] = frozenset(),
        tags=None,
    ) -> list[tuple[str, bool]]:
        """A worked solution as `(text, is_policy)` pieces, for warm-start data: the policy
        writes each step; a step in `consult_steps` is asked instead and its reply is an
        observation piece (tokens that will carry loss mask 0). A step also in
        `refused_steps` gets the engine's "expert unavailable" observation instead of the
        reply, and the policy then computes that step itself. Either way the policy writes
        the step out after the observation, so the running value stays in its own text."""
        from eapo.protocol.render import render_observation, render_refusal, render_reply
        from eapo.protocol.tags import Tags

        tags = tags or Tags()
        if not refused_steps <= consult_steps:
            raise ValueError(f"refused_steps {sorted(refused_steps)} must be a subset of consult_steps {sorted(consult_steps)}")
        pieces: list[tuple[str, bool]] = []
        steps = chain_steps(question)
        for i, (a, op, b, r) in enumerate(steps):
            sep = " " if i else ""
            if i in consult_steps:
                pieces.append((f"{sep}{tags.consult_open}{tags.query_open}{a}{op}{b}{tags.query_close}{tags.consult_close}", True))
                # exactly the observation the rollout engine appends, so warm-start data and
                # rollouts share one token layout
                part = render_refusal(0, tags) if i in refused_steps else render_reply(0, str(r), tags)
                pieces.append((render_observation([part]), False))
                pieces.append((f"{a}{op}{b}={r}", True))
            else:
                pieces.append((f"{sep}{a}{op}{b}={r}", True))
        final = steps[-1][3] if steps else int(question)
        pieces.append((f" {tags.answer_open}{final}{tags.answer_close}", True))
        return pieces
