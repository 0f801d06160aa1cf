"""The generation-backend protocol: continue a batch of token-id contexts.

The rollout engine never renders text back into prompts; it hands each backend the exact
ids recorded so far and appends what comes back. A backend returns, per context, the new
ids up to and including the token that stopped it, with the sampler's log-probability of
each (EAPO.md §8: old-policy log-probs are those of the sampler). Backends: Hugging Face
transformers (`HFBackend`), a scripted fake for tests; vLLM comes with the scaling work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    # Token ids that end a segment (EOS and, with single-token tags, the closing tags) and
    # strings that do (tags that span several tokens in a real model's vocabulary).
    stop_token_ids: tuple[int, ...] = ()
    stop_strings: tuple[str, ...] = ()
    # Strings the decoded policy text may never contain, whatever tokens would spell them
    # (the consult tags under the expert-free lock; `eapo.rollout.forbid`).
    forbidden: tuple[str, ...] = ()
    # Token ids banned at every position of this call (how a token-level backend resamples
    # one position under the text lock: `eapo.rollout.forbid.hold`).
    banned_ids: tuple[int, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if any(not isinstance(f, str) or not f for f in self.forbidden):
            raise ValueError(f"forbidden must hold non-empty strings (text never to be written), got {self.forbidden!r}")


@dataclass
class Generation:
    ids: list[int]
    logprobs: list[float]
    # "stop": a stop token or string ended it; "eos": the end-of-sequence token did;
    # "length": it ran out of tokens.
    finish: str
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.logprobs):
            raise ValueError(f"{len(self.ids)} ids but {len(self.logprobs)} log-probs")


@runtime_checkable
class GenerationBackend(Protocol):
    eos_token_ids: tuple[int, ...]

    def generate(self, contexts: list[list[int]], max_new_tokens: list[int], params: SamplingParams) -> list[Generation]:
        """One continuation per context, at most `max_new_tokens[i]` new tokens each."""
        ...


def check_limits(contexts: list[list[int]], max_new_tokens: list[int]) -> None:
    """The part of the `generate` contract every backend enforces: one token limit per context."""
    if len(contexts) != len(max_new_tokens):
        raise ValueError("one token limit per context is required")
