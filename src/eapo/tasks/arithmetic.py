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

from eapo.schema.task import ORACLES, TaskConfig  # ORACLES: a re-export, the choices live in eapo.schema
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


_WRITTEN_STEP = re.compile(r"\d+\s*[+-]\s*\d+\s*=\s*-?\d+")


def _policy_position(request: ExpertRequest) -> tuple[list[tuple[int, str, int, int]], list[str]] | None:
    """The problem's steps and the steps `a op b = r` the policy has written so far (replies
    and queries carry no `=`, so only its own steps count); None without a transcript or
    past the last step."""
    if request.transcript is None:
        return None
    written = _WRITTEN_STEP.findall(request.transcript)
    steps = chain_steps(request.problem)
    return (steps, written) if len(written) < len(steps) else None


def write_answer(request: ExpertRequest) -> str:
    """The step the policy is at, written out as the policy writes it (`85-19=66`), from
    the running value it has: for `rollout.consult_style: bare`, where the reply is
    appended to the policy's text as if it had written the step itself."""
    position = _policy_position(request)
    if position is None:
        return UNKNOWN_REPLY
    steps, written = position
    value = int(written[-1].rsplit("=", 1)[1]) if written else steps[0][0]
    _, op, b, _ = steps[len(written)]
    return f"{value}{op}{b}={value - b if op == '-' else value + b}"


def step_answer(request: ExpertRequest) -> str:
    """The right result of the step the policy is at, from the running value it has.

    Fixes that one step (its operand read from the problem, its sum done right) but not an
    earlier slip, so every step the policy writes itself still decides the reward. The
    running value is the result of the last step the policy wrote (the first operand
    before any). Without a transcript, or past the last step, the reply is `?`."""
    step = write_answer(request)
    return step if step == UNKNOWN_REPLY else step.rsplit("=", 1)[1]


def tutor_answer(request: ExpertRequest) -> str:
    """The true running value after the step the policy is at, whatever it asked.

    Why: a literal answer to `121+50` cannot help a policy that misread 55 as 50, and on the
    built-in task 30-40% of wrong steps are misread operands (docs/TASK.md). A tutor who
    knows the problem answers the question the policy meant. Without a transcript, or past
    the last step, the reply is `?`."""
    position = _policy_position(request)
    if position is None:
        return UNKNOWN_REPLY
    steps, written = position
    return str(steps[len(written)][3])


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
    oracle: str = "literal"
    """What `oracle_answer` replies: "literal", the value of the query as asked; "step",
    the right result of the policy's current step (`step_answer`); "write", that step
    written out (`write_answer`, for bare consultations); "tutor", the true running value
    after that step (`tutor_answer`)."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got {self.min_len}, {self.max_len}")
        if self.oracle not in ORACLES:
            raise ValueError(f"oracle must be one of {', '.join(ORACLES)}, got {self.oracle!r}")

    @classmethod
    def from_config(cls, t: TaskConfig) -> ChainTask:
        """The task a `task:` section with name "chain" describes."""
        assert t.train_size is not None  # the config checked it
        return cls(name=t.name, min_len=t.min_len, max_len=t.max_len, seed=t.seed, oracle=t.oracle,
                   sizes=(("train", t.train_size), ("val", t.val_size), ("test", t.test_size)))

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
        if self.oracle == "tutor":
            return tutor_answer(request)
        if self.oracle == "step":
            return step_answer(request)
        if self.oracle == "write":
            return write_answer(request)
        value = evaluate_chain(request.query)
        return UNKNOWN_REPLY if value is None else str(value)

    @staticmethod
    def solution_text(
        question: str,
        consult_steps: frozenset[int] = frozenset(),
        *,
        refused_steps: frozenset[int] = frozenset(),
        tags=None,
        query: str = "step",
        slips: dict[int, int] | None = None,
        style: str = "block",
        bare_refusal: str = "block",
    ) -> list[tuple[str, bool]]:
        """A worked solution as `(text, is_policy)` pieces, for warm-start data: the policy
        writes each step; a step in `consult_steps` is asked instead and its reply is an
        observation piece (tokens that will carry loss mask 0). A step also in
        `refused_steps` gets the engine's "expert unavailable" observation instead of the
        reply, and the policy then computes that step itself. Either way the policy writes
        the step out after the observation, so the running value stays in its own text.

        `query` is what the policy asks: `"step"` the step itself (`85-19`, with its own
        running value), or `"prefix"` the question up to that step (`47+38-19`), whose reply
        is the true running value whatever the policy wrote before. `slips` maps a step to a
        wrong result the policy wrote there: it is an observation-like piece (shown, never
        trained on), later steps go on from it, and only an accepted prefix query repairs
        the chain. So a demonstration can show what a reply is for: putting a derailed
        chain back on track (docs/TASK.md, issue 4).

        `style="bare"` is `rollout.consult_style: bare`: the policy writes only the consult
        tag and an accepted reply is the step itself (`85-19=66`, an observation piece), as
        the "write" oracle answers; a refused one is followed by the policy's own step, after
        the "expert unavailable" block, or straight after its tag with `bare_refusal="silent"`
        (`rollout.bare_refusal`)."""
        from eapo.protocol.render import render_observation, render_refusal, render_reply
        from eapo.protocol.tags import Tags

        tags = tags or Tags()
        slips = slips or {}
        if not refused_steps <= consult_steps:
            raise ValueError(f"refused_steps {sorted(refused_steps)} must be a subset of consult_steps {sorted(consult_steps)}")
        if query not in ("step", "prefix"):
            raise ValueError(f"query must be 'step' or 'prefix', got {query!r}")
        if style not in ("block", "bare") or (style == "bare" and query != "step"):
            raise ValueError(f"style must be 'block', or 'bare' with query 'step'; got {style!r} with {query!r}")
        if bare_refusal not in ("block", "silent") or (bare_refusal == "silent" and style != "bare"):
            raise ValueError(f"bare_refusal must be 'block', or 'silent' with style 'bare'; got {bare_refusal!r} with {style!r}")
        if set(slips) & consult_steps:
            raise ValueError(f"a slipped step cannot also be consulted: {sorted(set(slips) & consult_steps)}")
        pieces: list[tuple[str, bool]] = []
        terms = _TERM.findall(question)
        value = int(terms[0][1]) if terms else int(question)  # the running value in the policy's text
        for i, (_, op, b, _) in enumerate(chain_steps(question)):
            sep = " " if i else ""
            own = value - b if op == "-" else value + b
            if i in consult_steps and style == "bare":
                pieces.append((f"{sep}{tags.consult_open}", True))
                result = own
                if i in refused_steps and bare_refusal == "block":
                    pieces.append((render_observation([render_refusal(0, tags)]), False))
                pieces.append((f"{value}{op}{b}={result}", i in refused_steps))
            elif i in consult_steps:
                if query == "prefix":
                    asked = terms[0][1] + "".join(sign + num for sign, num in terms[1:i + 2])
                else:
                    asked = f"{value}{op}{b}"
                pieces.append((f"{sep}{tags.consult_open}{tags.query_open}{asked}{tags.query_close}{tags.consult_close}", True))
                # exactly the observation the rollout engine appends, so warm-start data and
                # rollouts share one token layout
                if i in refused_steps:
                    result, part = own, render_refusal(0, tags)
                else:
                    result = evaluate_chain(asked)
                    part = render_reply(0, str(result), tags)
                pieces.append((render_observation([part]), False))
                pieces.append((f"{value}{op}{b}={result}", True))
            elif i in slips:
                result = slips[i]
                pieces.append((f"{sep}{value}{op}{b}={result}", False))
            else:
                result = own
                pieces.append((f"{sep}{value}{op}{b}={result}", True))
            value = result
        pieces.append((f" {tags.answer_open}{value}{tags.answer_close}", True))
        return pieces
