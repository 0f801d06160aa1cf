"""Models: the tiny built-in policy and expert (real Hugging Face formats, built locally
with no model hub) and `load_policy`, which loads those and real checkpoints alike;
`load_frozen` loads a model that only answers (local experts, `eapo serve-expert`).

The names are loaded on first use (PEP 562): `eapo.models.resolve` and `eapo.models.checks`
are what a command's cheap checks import, and they must not pay for torch and transformers
(seconds) before an argument is refused."""

from __future__ import annotations

from eapo.moved import forward

_NAMES = {
    "EXPERT_SPEC": "eapo.models.build",
    "POLICY_SPEC": "eapo.models.build",
    "TinyModelSpec": "eapo.models.build",
    "build_tiny_model": "eapo.models.build",
    "ensure_tiny_models": "eapo.models.build",
    "load_policy": "eapo.models.build",
    "load_frozen": "eapo.models.frozen",
    "build_tokenizer": "eapo.models.tokenizer",
}

__all__ = sorted(_NAMES)

__getattr__ = forward(__name__, _NAMES)
