"""Tiny policy and expert models, built on this machine in real Hugging Face formats.

Why: tests, smoke runs and CI must exercise the code path a real model takes
(`AutoModelForCausalLM` / `AutoTokenizer` on a folder with `config.json`, safetensors,
`tokenizer.json`, a chat template, a generation config), with no model hub and in seconds on
a CPU. The models are randomly initialised from a seed, so they are deterministic but know
nothing: they are for plumbing, not for learning curves.

Why atomic: several processes (one per rank) may ask for the same cached model at once, and
a build may be killed half-way. A model is written into a temporary folder beside its
destination, completed by the provenance file `eapo_model.json` (written last, it is the
completion marker) and then renamed into place. A folder without a valid marker is never
loaded: `ensure_tiny_models` rebuilds it.

Not covered: downloading or converting real checkpoints (`load_policy` loads those, from any
local or hub path, like the tiny ones).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from eapo.models.checks import check_policy
from eapo.models.tokenizer import EOS_TOKEN, IM_END, PAD_TOKEN, build_tokenizer
from eapo.protocol.tags import Tags

logger = logging.getLogger(__name__)

# Bump when the artefact changes for the same spec and tags (tokenizer layout, files
# written, ...): every cached model is then rebuilt.
FORMAT_VERSION = 1
MARKER_FILE = "eapo_model.json"
# Temporary build folders older than this are leftovers of killed builds, not builds in
# progress (a tiny build takes seconds), and are removed.
_STALE_TMP_SECONDS = 3600.0
_SUPPORTED_MODEL_TYPES = ("qwen2", "llama")


@dataclass(frozen=True)
class TinyModelSpec:
    """Architecture and seed of a tiny decoder. Override a preset with
    `dataclasses.replace(POLICY_SPEC, num_hidden_layers=1, seed=3)`."""

    model_type: str = "qwen2"
    """`qwen2` (the default: q/k/v biases, the tokenizer class of Qwen2.5 checkpoints) or `llama`."""
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    """Fewer key/value heads than query heads (grouped-query attention), as in Qwen2.5."""
    intermediate_size: int = 384
    max_position_embeddings: int = 1024
    tie_word_embeddings: bool = True
    seed: int = 0
    """Seed of the random initialisation; the same spec always gives the same weights."""

    def __post_init__(self) -> None:
        if self.model_type not in _SUPPORTED_MODEL_TYPES:
            raise ValueError(f"model_type must be one of {_SUPPORTED_MODEL_TYPES}, got {self.model_type!r}")
        for name in (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "intermediate_size",
            "max_position_embeddings",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )


POLICY_SPEC = TinyModelSpec()  # ~0.43M parameters with the 270-token byte vocabulary
EXPERT_SPEC = TinyModelSpec(hidden_size=256, num_hidden_layers=4, intermediate_size=768, seed=1)  # ~3.2M


def cache_key(spec: TinyModelSpec, tags: Tags = Tags()) -> str:
    """Short hash of spec, tags and format version: any change gives a new cache folder (all of
    `tags`, not only the single-token ones, so the provenance file never misreports them)."""
    payload = {"format": FORMAT_VERSION, "spec": dataclasses.asdict(spec), "tags": dataclasses.asdict(tags)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def build_tiny_model(
    out_dir: str | Path,
    spec: TinyModelSpec = POLICY_SPEC,
    tags: Tags = Tags(),
    *,
    overwrite: bool = False,
) -> Path:
    """Build a randomly initialised model and its tokenizer into `out_dir`, atomically.

    Raises FileExistsError when `out_dir` exists, unless `overwrite` (then the old folder is
    replaced once the new one is complete). Returns `out_dir` as a Path.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True to replace it, or use ensure_tiny_models")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _write_model(tmp, spec, tags)
        if out_dir.exists():  # overwrite: move the old folder aside, then drop it
            trash = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            out_dir.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("built tiny %s model (%s) in %s", spec.model_type, cache_key(spec, tags), out_dir)
    return out_dir


def _write_model(folder: Path, spec: TinyModelSpec, tags: Tags) -> None:
    tokenizer = build_tokenizer(tags)
    tokenizer.model_max_length = spec.max_position_embeddings
    eos_id, pad_id, im_end_id = tokenizer.convert_tokens_to_ids([EOS_TOKEN, PAD_TOKEN, IM_END])
    config = AutoConfig.for_model(
        spec.model_type,
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    # fork_rng: seed the initialisation without touching the caller's global RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Chat turns end with <|im_end|>, plain text with <|endoftext|>: stop on either, as
    # Qwen2.5's instruct checkpoints do.
    model.generation_config = GenerationConfig(eos_token_id=[eos_id, im_end_id], pad_token_id=pad_id)
    folder.mkdir(parents=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    marker = {
        "format": FORMAT_VERSION,
        "key": cache_key(spec, tags),
        "spec": dataclasses.asdict(spec),
        "tags": dataclasses.asdict(tags),
        "num_parameters": model.num_parameters(),
        "vocab_size": len(tokenizer),
    }
    (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")  # last: completes the folder


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The provenance record of a built model, or None when the folder is not complete."""
    try:
        return json.loads((Path(folder) / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None


def default_cache_dir() -> Path:
    """`$EAPO_CACHE_DIR`, else `~/.cache/eapo`."""
    env = os.environ.get("EAPO_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "eapo"


def ensure_tiny_models(
    cache_dir: str | Path | None = None,
    tags: Tags = Tags(),
    policy: TinyModelSpec = POLICY_SPEC,
    expert: TinyModelSpec = EXPERT_SPEC,
) -> dict[str, Path]:
    """Paths of the tiny policy and expert, building each one only when its cached copy is
    missing or incomplete. Returns `{"policy": path, "expert": path}`."""
    root = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "tiny-models"
    return {role: _ensure_one(root, role, spec, tags) for role, spec in (("policy", policy), ("expert", expert))}


def _ensure_one(root: Path, role: str, spec: TinyModelSpec, tags: Tags) -> Path:
    key = cache_key(spec, tags)
    path = root / f"{role}-{key}"
    if _is_complete(path, key):
        return path
    _remove_stale_tmp(root, path.name)
    # Checked again just before removing: another process may have renamed its build into
    # place since the first check.
    if path.exists() and not _is_complete(path, key):
        logger.warning("%s has no valid %s (an interrupted or foreign write); rebuilding it", path, MARKER_FILE)
        trash = root / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        return build_tiny_model(path, spec, tags)
    except OSError:
        # Another process renamed its own build into place first; the builds are
        # deterministic, so its folder is as good as ours.
        if _is_complete(path, key):
            return path
        raise


def _is_complete(path: Path, key: str) -> bool:
    marker = read_marker(path)
    return marker is not None and marker.get("key") == key


def _remove_stale_tmp(root: Path, name: str) -> None:
    if not root.is_dir():
        return
    now = time.time()
    for leftover in root.glob(f".{name}.*-*"):
        try:
            stale = now - leftover.stat().st_mtime > _STALE_TMP_SECONDS
        except OSError:
            continue  # removed meanwhile by its owner
        if stale:
            logger.info("removing leftover build folder %s", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def load_policy(
    path: str | Path,
    device: str | torch.device | None = None,
    *,
    dtype: Any = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) from a local folder or hub id, through `AutoModelForCausalLM` and
    `AutoTokenizer`: the same code for the tiny models and real ones.

    `dtype` goes to `from_pretrained` (None: transformers' default). The tokenizer pads on
    the left whatever the checkpoint says, and gets a pad token (its eos) if it has none.
    Raises `eapo.models.checks.PolicyCheckError` when the model's vocabulary is smaller
    than the tokenizer's.
    """
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    tokenizer = load_tokenizer(path)
    check_policy(tokenizer, model=model, name=str(path))  # before any rollout or training step
    if device is not None:
        model = model.to(device)
    return model, tokenizer


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The policy's tokenizer as every backend needs it: left padding and a pad token."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.padding_side != "left":
        # Batched generation appends on the right, so prompts must be padded on the left;
        # many checkpoints ship right padding (what supervised fine-tuning wants).
        logger.debug("%s pads on the %s; switching to left padding", path, tokenizer.padding_side)
        tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        # Some checkpoints (Llama-style) have no pad token; padding positions are masked by
        # the attention mask, so reusing eos is safe for generation and loss alike.
        logger.warning("%s has no pad token; using its eos token %r", path, tokenizer.eos_token)
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
