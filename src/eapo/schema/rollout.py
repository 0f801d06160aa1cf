"""The `rollout` section: one multi-turn episode (EAPO.md §1): protocol, limits, sampling
and what experts see. Read by the rollout engine (`eapo.rollout.engine`), the trainer,
the evaluators and verl's agent loop."""

from __future__ import annotations

from dataclasses import dataclass, field

from eapo.protocol.tags import Tags

__all__ = ["BARE_REFUSALS", "CONSULT_MODES", "CONSULT_STYLES", "RolloutConfig"]

CONSULT_MODES = ("open", "refuse", "forbid")
CONSULT_STYLES = ("block", "bare")
BARE_REFUSALS = ("block", "silent")


@dataclass(frozen=True)
class RolloutConfig:
    """One multi-turn episode: the protocol's tags, the token limits, sampling, and what
    experts see."""

    tags: Tags = field(default_factory=Tags)
    """Protocol strings (ours, EAPO.md §1); the built-in tokenizer makes each one token."""
    max_queries: int = 3
    """K: queries per consultation (EAPO.md §2; paper: 3; K=1 is sequential EAPO); extra ones are dropped and counted."""
    consult_mode: str = "open"
    """open: consultations go to the pool (subject to rho); refuse: any attempt gets the
    unavailable observation and is counted (rho = 0); forbid: the consult tag's opening
    tokens can't be generated at all (EAPO.md §5)."""
    tokens_per_turn: int = 48
    """Policy tokens per segment before the turn ends by length (think on)."""
    max_policy_tokens: int = 256
    """Per episode, policy-sampled tokens only."""
    max_completion_tokens: int = 512
    """Per episode, policy and observation tokens."""
    max_reply_tokens: int = 32
    """Each expert reply is cut to this many tokens."""
    answer_now_notice: bool = True
    """(ours) A notice before the last turn."""
    expert_sees_transcript: bool = False
    """(ours) Whether experts see the policy's transcript so far; false: the problem and the query only."""
    learn_to_ask: bool = True
    """(ours, a diagnostic) False: the consultation block's tokens carry loss mask 0, so RL
    never changes when or what the policy asks (it keeps its warm-start habit) and the
    reward reaches only the steps it writes itself.
    docs/notebook/2026-11-27-issue4-stop12-stronger-help.md."""
    consult_style: str = "block"
    """(ours) block: the policy writes `<consult><query>q</query>...</consult>` and replies
    come back as `<expert id="i">...</expert>` blocks (EAPO.md §1). bare: the policy
    writes only the opening tag, the one implicit question is "help me on from here" (the
    expert reads the transcript), and an accepted reply is appended as it is, so the text
    goes on as if the policy had written it; a refusal is the usual block. Why: a tiny
    policy's skill learned after reply blocks did not carry over to clean, expert-free
    text (docs/notebook/2026-11-27-issue4-stop12-stronger-help.md); bare replies leave
    the context almost clean."""
    bare_refusal: str = "block"
    """(ours) What a refused bare consultation leaves in the text. block: the usual
    "expert unavailable" block. silent: nothing; the policy goes on after its own tag and
    writes the step itself, so the text it computes in when help is refused is the text
    it is helped in, and annealing rho trains the steps it used to hand over in that same
    clean context (docs/notebook/2026-11-27-issue4-stop13-sparse-starts.md). Only for
    consult_style bare."""
    temperature: float = 1.0
    """Policy sampling temperature (TRL recomputes the log-probabilities at it too)."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    system_prompt: str | None = None
    """The system text of every prompt; null: the protocol's default text; "" for none."""

    def __post_init__(self) -> None:
        if self.max_queries < 1:
            raise ValueError(f"rollout.max_queries must be >= 1, got {self.max_queries}")
        if self.consult_style not in CONSULT_STYLES:
            raise ValueError(f"rollout.consult_style must be one of {CONSULT_STYLES}, got {self.consult_style!r}")
        if self.bare_refusal not in BARE_REFUSALS:
            raise ValueError(f"rollout.bare_refusal must be one of {BARE_REFUSALS}, got {self.bare_refusal!r}")
        if self.bare_refusal != "block" and self.consult_style != "bare":
            raise ValueError("rollout.bare_refusal: silent needs rollout.consult_style: bare (a block consultation is always answered)")
        if self.consult_mode not in CONSULT_MODES:
            raise ValueError(f"rollout.consult_mode must be one of {CONSULT_MODES}, got {self.consult_mode!r}")
        for name in ("tokens_per_turn", "max_policy_tokens", "max_completion_tokens", "max_reply_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"rollout.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_completion_tokens < self.max_policy_tokens:
            raise ValueError("rollout.max_completion_tokens must be >= rollout.max_policy_tokens")
