"""The "noisy expert" ablation (EAPO.md §6): an expert that is wrong with probability p.

It asks whether the policy learns to cross-check and to judge help rather than copy it.
The corruption must look like an honest mistake: nothing in the reply text marks it (the
policy would learn to spot the marker, not to doubt the content), so the record of which
replies were corrupted lives only in this object's counters. Whether a request is
corrupted is a keyed hash of the seed and the request's key, so a rerun corrupts the same
replies, and the decision does not depend on the order or batching of calls.

The default corruption changes the last integer of the reply (for math the answer is
usually last), else shuffles its words; it always changes the text. Errors of the inner
expert pass through untouched: a failure is not a wrong answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from eapo.experts.base import EXPERTS, Expert, build_expert, keyed_rng, request_key, supports_batch
from eapo.types import ExpertReply, ExpertRequest

__all__ = ["NoisyExpert", "corrupt_text"]

# An integer not glued to a preceding digit; the minus counts as a sign only when it is
# not a binary minus ("5-3" has the integers 5 and 3).
_INT = re.compile(r"(?:(?<![\w.])-)?\d+")


def corrupt_text(text: str, rng: random.Random) -> str:
    """Make `text` wrong, always changing it.

    If it holds integers, the last one moves by a nonzero offset in [-9, 9]; otherwise its
    words are shuffled, and if that changes nothing " not" is appended.

    >>> corrupt_text("the answer is 42", random.Random(0)) != "the answer is 42"
    True
    >>> corrupt_text("yes", random.Random(0))
    'yes not'
    """
    matches = list(_INT.finditer(text))
    if matches:
        last = matches[-1]
        offset = rng.choice([d for d in range(-9, 10) if d != 0])
        return text[: last.start()] + str(int(last.group()) + offset) + text[last.end() :]
    words = text.split()
    rng.shuffle(words)
    shuffled = " ".join(words)
    return shuffled if shuffled != text else text + " not"


class NoisyExpert:
    """Wraps `inner`; with probability `p` per request replaces its reply's text by
    `corrupt(text, rng)`. `corrupted` / `replies` count what happened (see
    `snapshot_and_reset`). Batches exactly when `inner` does."""

    def __init__(
        self,
        inner: Expert,
        p: float,
        corrupt: Callable[[str, random.Random], str] | None = None,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p is a probability in [0, 1], got {p}")
        self.inner = inner
        self.p = p
        self.corrupt = corrupt if corrupt is not None else corrupt_text
        self.seed = seed
        self.name = name if name is not None else f"noisy:{inner.name}"
        self.batches = supports_batch(inner)
        self.replies = 0  # good replies of the inner expert seen
        self.corrupted = 0  # of which corrupted
        self._lock = threading.Lock()

    def will_corrupt(self, request: ExpertRequest) -> bool:
        """The decision for `request`, without asking anything."""
        return self._draw(request)[0]

    async def ask(self, request: ExpertRequest) -> ExpertReply:
        return self._apply(request, await self.inner.ask(request))

    async def ask_batch(self, requests: list[ExpertRequest]) -> list[ExpertReply]:
        if self.batches:
            replies = await self.inner.ask_batch(requests)  # type: ignore[attr-defined]
        else:
            replies = await asyncio.gather(*(self.inner.ask(r) for r in requests))
        if not isinstance(replies, (list, tuple)) or len(replies) != len(requests):
            return replies  # let the pool call it a bad reply
        return [self._apply(r, rep) for r, rep in zip(requests, replies)]

    def snapshot_and_reset(self) -> dict[str, int]:
        with self._lock:
            out = {"replies": self.replies, "corrupted": self.corrupted}
            self.replies = self.corrupted = 0
        return out

    def _draw(self, request: ExpertRequest) -> tuple[bool, random.Random]:
        rng = keyed_rng(self.seed, "noisy", request_key(request))
        return rng.random() < self.p, rng

    def _apply(self, request: ExpertRequest, reply: ExpertReply) -> ExpertReply:
        if not isinstance(reply, ExpertReply) or not isinstance(reply.text, str) or reply.error is not None:
            return reply  # failures pass through; the pool classifies them
        hit, rng = self._draw(request)
        with self._lock:
            self.replies += 1
            self.corrupted += hit
        if not hit:
            return reply
        return dataclasses.replace(reply, text=self.corrupt(reply.text, rng))

    def __repr__(self) -> str:
        return f"NoisyExpert(inner={self.inner!r}, p={self.p}, seed={self.seed})"


@EXPERTS.register("noisy")
def _make_noisy(*, inner: Expert | Mapping[str, Any], **config: Any) -> NoisyExpert:
    """`inner` is an expert or a spec such as `{"type": "oracle"}`."""
    if isinstance(inner, Mapping):
        inner = build_expert(inner)
    return NoisyExpert(inner, **config)
