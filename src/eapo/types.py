"""The shared vocabulary: problems, parsed actions, expert requests and replies, turns and
episodes. Plain dataclasses with no torch, so every layer (and the network expert) can use
them. Token-level records live in `Episode`: `completion_ids`, `loss_mask` and `logprobs`
always have the same length, and mask 1 marks exactly the tokens the policy sampled."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One verifiable problem. `id` is stable across runs (the adaptive schedule keys on it)."""

    id: str
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


class ActionKind(str, enum.Enum):
    THINK = "think"  # the segment ended without an action tag: the next turn continues it
    CONSULT = "consult"
    ANSWER = "answer"


@dataclass(frozen=True)
class ParsedSegment:
    """What the parser read from the policy's text since the last observation.

    `queries` are already stripped, de-emptied and cut to K; `dropped_queries` counts what
    was cut. `well_formed` is False when the action block was there but malformed (nested
    or unclosed tags, an empty consultation, an empty answer)."""

    kind: ActionKind
    queries: tuple[str, ...] = ()
    dropped_queries: int = 0
    answer: str | None = None
    well_formed: bool = True
    issues: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpertRequest:
    """What an expert is asked. `key` identifies the call deterministically (episode uid and
    query index), for seeded experts and reply caches."""

    problem: str
    query: str
    key: str = ""
    transcript: str | None = None
    problem_id: str = ""
    gold: str | None = None  # only oracle-style experts may read it


@dataclass
class ExpertReply:
    """An expert's answer, or the reason there is none. Errors are values, never exceptions:
    a failed call becomes the "expert unavailable" observation with `error` recorded."""

    text: str
    expert: str = ""
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # "timeout", "exception:<Type>", "http:<code>", ...

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ExpertCall:
    """One query of one consultation turn, with its fate."""

    query: str
    member: int
    expert: str
    accepted: bool
    reason: str  # "accepted" | "refused_by_schedule" | "expert_error:<cause>" | "locked"
    rho: float
    draw: float
    reply: str
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class TurnRecord:
    index: int
    action: str  # ActionKind value, or "eos" / "length" when generation ended otherwise
    policy_tokens: int
    observation_tokens: int = 0
    untrained_tokens: int = 0  # policy tokens left out of the loss (rollout.learn_to_ask off)
    queries: list[str] = field(default_factory=list)
    dropped_queries: int = 0
    calls: list[ExpertCall] = field(default_factory=list)
    notice: str | None = None
    issues: list[str] = field(default_factory=list)


class StopReason(str, enum.Enum):
    ANSWER = "answer"
    EOS = "eos"  # the policy ended its text without an answer
    TURN_BUDGET = "turn_budget"
    TOKEN_BUDGET = "token_budget"


@dataclass
class Episode:
    """One rollout. `completion_ids` holds every token after the prompt, policy and
    observation alike, in order; `loss_mask[i] == 1` iff the policy sampled
    `completion_ids[i]`; `logprobs[i]` is the sampler's log-probability there (0.0 on
    observation tokens)."""

    uid: str
    problem_id: str
    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    answer: str | None = None
    well_formed: bool = False
    stop_reason: str | None = None
    score: float = 0.0
    reward: float = 0.0
    penalty: float = 0.0
    gold: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def policy_tokens(self) -> int:
        return sum(self.loss_mask)

    @property
    def observation_tokens(self) -> int:
        return len(self.loss_mask) - sum(self.loss_mask)

    @property
    def calls(self) -> list[ExpertCall]:
        return [c for t in self.turns for c in t.calls]

    @property
    def consults(self) -> int:
        """Consultation turns (not queries): the unit the penalty counts."""
        return sum(1 for t in self.turns if t.action == ActionKind.CONSULT.value)

    @property
    def accepted_calls(self) -> int:
        return sum(1 for c in self.calls if c.accepted)

    def extend(self, ids: list[int], *, policy: bool, logprobs: list[float] | None = None) -> None:
        """Append tokens, keeping ids, mask and log-probs the same length."""
        if policy:
            if logprobs is None or len(logprobs) != len(ids):
                raise ValueError("policy tokens need one log-prob each")
        self.completion_ids.extend(ids)
        self.loss_mask.extend([1 if policy else 0] * len(ids))
        self.logprobs.extend(logprobs if policy else [0.0] * len(ids))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
