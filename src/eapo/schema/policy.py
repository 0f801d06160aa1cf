"""The policy's sections: `model` (which policy, LoRA) and `warmstart` (the supervised warm
start of the tiny built-in policy, so it speaks the protocol before RL)."""

from __future__ import annotations

from dataclasses import dataclass

from eapo.schema.checks import check_int as _int
from eapo.schema.checks import check_lengths as _lengths
from eapo.schema.checks import check_one_of as _one_of
from eapo.schema.checks import check_real as _real
from eapo.schema.rollout import BARE_REFUSALS, CONSULT_STYLES

__all__ = ["ModelConfig", "WarmStartConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """The policy model, and LoRA if it is trained through adapters."""

    policy: str | None = None
    """null: the tiny built-in policy; else a local folder or a hub id."""
    system_prompt: bool | None = None
    """Whether every prompt opens with the protocol's system text (rollout.system_prompt,
    the protocol's default when that is empty). null: yes for a given policy (--model,
    model.policy), whose chat template would otherwise put its own default there (Qwen2:
    "You are a helpful assistant", nothing about consulting); no for the tiny built-in
    policy, warm-started without it. Resolved by `eapo.assembly.run.with_policy_prompt`."""
    lora: bool = False
    """Train LoRA adapters instead of all weights."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA branch."""
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Names of the modules that get adapters."""

    def __post_init__(self) -> None:
        if self.policy is not None and (not isinstance(self.policy, str) or not self.policy):
            raise ValueError(f"model.policy must be null (the built-in policy) or a folder/hub id, got {self.policy!r}")
        if self.system_prompt is not None and not isinstance(self.system_prompt, bool):
            raise ValueError(f"model.system_prompt must be null, true or false, got {self.system_prompt!r}")
        _int("model", "lora_r", self.lora_r)
        _int("model", "lora_alpha", self.lora_alpha)
        _real("model", "lora_dropout", self.lora_dropout, 0.0, 1.0)
        if self.lora_dropout >= 1.0:
            raise ValueError(f"model.lora_dropout must be < 1, got {self.lora_dropout!r}")
        if self.lora and not self.lora_target_modules:
            raise ValueError("model.lora_target_modules must name at least one module when model.lora is true")


@dataclass(frozen=True)
class WarmStartConfig:
    """Supervised warm start of the tiny policy, so it speaks the protocol before RL."""

    steps: int = 1200
    """Optimiser steps, one fresh batch each; 0 skips the warm start. Calibrated in
    docs/TASK.md: at 600 the tiny policy writes the format but hardly computes."""
    learning_rate: float = 2e-3
    """Learning rate of the warm start."""
    batch_size: int = 64
    """Sequences per step."""
    min_len: int = 1
    """Shortest synthetic problem shown."""
    max_len: int = 6
    """Longest synthetic problem shown."""
    consult_prob: float = 0.3
    """Share of demonstrations that consult before answering."""
    refusal_prob: float = 0.3
    """Share of demonstrated consultations that are refused (so the policy learns to go on alone)."""
    seed: int = 0
    """Seed of the demonstrations and of the warm-start optimiser."""
    query: str = "step"
    """What a demonstrated consultation asks: "step" (`85-19`, the step with the policy's own
    running value) or "prefix" (the question up to that step; its reply is the true running
    value, so it can put a derailed chain back on track). See docs/TASK.md."""
    slip_prob: float = 0.0
    """With "prefix" queries: share of demonstrations with an accepted consultation in which
    an earlier own step is shown wrong (never trained on) and the reply repairs the chain."""
    consult_style: str = "block"
    """How demonstrated consultations look: "block" or "bare" (must match
    rollout.consult_style; bare replies are the step itself, see the "write" oracle)."""
    bare_refusal: str = "block"
    """With "bare": what a demonstrated refusal shows (must match rollout.bare_refusal):
    "block" the "expert unavailable" block, "silent" nothing, the policy's own step follows
    its tag."""

    def __post_init__(self) -> None:
        _int("warmstart", "steps", self.steps, low=0)
        _one_of("warmstart", "query", self.query, ("step", "prefix"))
        _real("warmstart", "slip_prob", self.slip_prob, 0.0, 1.0)
        _one_of("warmstart", "consult_style", self.consult_style, CONSULT_STYLES)
        if self.consult_style == "bare" and self.query != "step":
            raise ValueError("warmstart.consult_style bare asks no explicit question: warmstart.query must be step")
        _one_of("warmstart", "bare_refusal", self.bare_refusal, BARE_REFUSALS)
        if self.bare_refusal != "block" and self.consult_style != "bare":
            raise ValueError("warmstart.bare_refusal: silent needs warmstart.consult_style: bare")
        if self.slip_prob > 0 and self.query != "prefix":
            raise ValueError("warmstart.slip_prob needs warmstart.query: prefix (a step query cannot repair a slip)")
        _real("warmstart", "learning_rate", self.learning_rate, open_low=True)
        _int("warmstart", "batch_size", self.batch_size)
        _lengths("warmstart", self.min_len, self.max_len)
        _real("warmstart", "consult_prob", self.consult_prob, 0.0, 1.0)
        _real("warmstart", "refusal_prob", self.refusal_prob, 0.0, 1.0)
