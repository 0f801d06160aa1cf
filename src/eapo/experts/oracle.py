"""An expert that is always right and costs nothing: the upper bound on what help can do.

It isolates the learning question (does the policy learn to ask, then to stand alone?)
from expert quality and latency, and it is what the built-in task's experts are on a CPU.
It answers through `answer_fn`, which the task supplies because only the task knows how
to answer a sub-question; without one it returns the gold answer carried by the request,
which is the only field of `ExpertRequest` an oracle may read and a real expert may not.

Token counts are character counts (there is no tokenizer here): a proxy, good enough for
the cost metrics of a toy run, not for comparing with a real model's bills.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eapo.experts.base import EXPERTS
from eapo.types import ExpertReply, ExpertRequest

__all__ = ["OracleExpert", "gold_answer"]


def gold_answer(request: ExpertRequest) -> str:
    """The default `answer_fn`: the request's gold answer."""
    if request.gold is None:
        raise ValueError(
            "OracleExpert without answer_fn needs request.gold; have the rollout pass the "
            "problem's gold answer, or give the oracle the task's answer_fn"
        )
    return request.gold


class OracleExpert:
    """Replies `answer_fn(request)` at once.

    >>> import asyncio
    >>> asyncio.run(OracleExpert().ask(ExpertRequest(problem="1+1", query="?", gold="2"))).text
    '2'
    """

    def __init__(self, answer_fn: Callable[[ExpertRequest], str] | None = None, name: str = "oracle") -> None:
        self.answer_fn = answer_fn if answer_fn is not None else gold_answer
        self.name = name

    async def ask(self, request: ExpertRequest) -> ExpertReply:
        text = self.answer_fn(request)
        return ExpertReply(
            text=text,
            expert=self.name,
            prompt_tokens=len(request.problem) + len(request.query),
            completion_tokens=len(text) if isinstance(text, str) else 0,
        )

    def __repr__(self) -> str:
        return f"OracleExpert(name={self.name!r}, answer_fn={getattr(self.answer_fn, '__name__', self.answer_fn)!r})"


@EXPERTS.register("oracle")
def _make_oracle(**config: Any) -> OracleExpert:
    return OracleExpert(**config)
