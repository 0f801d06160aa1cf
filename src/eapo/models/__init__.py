"""Models: the tiny built-in policy and expert (real Hugging Face formats, built locally
with no model hub) and `load_policy`, which loads those and real checkpoints alike;
`load_frozen` loads a model that only answers (local experts, `eapo serve-expert`)."""

from eapo.models.build import (
    EXPERT_SPEC,
    POLICY_SPEC,
    TinyModelSpec,
    build_tiny_model,
    ensure_tiny_models,
    load_policy,
)
from eapo.models.frozen import load_frozen
from eapo.models.tokenizer import build_tokenizer

__all__ = [
    "EXPERT_SPEC",
    "POLICY_SPEC",
    "TinyModelSpec",
    "build_tiny_model",
    "build_tokenizer",
    "ensure_tiny_models",
    "load_frozen",
    "load_policy",
]
