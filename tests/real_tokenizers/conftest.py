"""Fixtures of the real-tokenizer tier: the Hugging Face tokenizers in ../shared/tokenizers
(or $EAPO_TOKENIZERS_DIR), each with a random-initialised model of its real architecture,
and a way to make such a model write a given text.

Why random models: they have the real vocabularies, templates and code paths (embedding
size, generation, stop strings, TRL's padding) at a few million parameters; what they
write is forced by `Scripted`, a forward hook that puts all probability on the next
scripted token, so a test decides the text (and its real BPE tokenization) while every
layer of the real generation stack runs.

A missing folder skips the tests that need it and says where it was looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ENV_VAR = "EAPO_TOKENIZERS_DIR"
NAMES = ("qwen2", "llama-bpe", "gpt-2", "phi-3", "deepseek-llm")
# The architecture each vocabulary ships with (DeepSeek-LLM, GPT-2 and Phi-3 as Llama-style
# decoders: only the vocabulary and the template matter to the pipeline).
ARCH = {"qwen2": "qwen2", "llama-bpe": "llama", "gpt-2": "llama", "phi-3": "llama", "deepseek-llm": "llama"}


def _candidates() -> list[Path]:
    """$EAPO_TOKENIZERS_DIR, else `../shared/tokenizers` beside the repository root (found
    from the working directory, then from this file), as the benchmark data is found."""
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env).expanduser()]
    found = []
    cwd = Path.cwd().resolve()
    for d in (cwd, *cwd.parents):
        if (d / "pyproject.toml").exists() or (d / ".git").exists():
            found.append(d.parent / "shared" / "tokenizers")
            break
    found.append(Path(__file__).resolve().parents[2].parent / "shared" / "tokenizers")
    return list(dict.fromkeys(found))


def tokenizer_folder(name: str) -> Path:
    """The folder of tokenizer `name`; skips the calling test when it is missing."""
    tried = _candidates()
    for root in tried:
        if (root / name / "tokenizer.json").is_file():
            return root / name
    pytest.skip(f"real tokenizer {name!r} not found (set ${ENV_VAR}, or place it in ../shared/tokenizers/{name}; "
                f"tried {', '.join(str(p) for p in tried)})")


def model_config(name: str, vocab_size: int, tok):
    from transformers import LlamaConfig, Qwen2Config

    cls = Qwen2Config if ARCH[name] == "qwen2" else LlamaConfig
    return cls(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)


def build_policy(folder: Path, name: str, out: Path, vocab_size: int | None = None) -> Path:
    """A random-init model of `name`'s architecture and the real tokenizer, saved to `out`.
    Its generation config names only the tokenizer's eos, as many checkpoints do: a chat
    end token (Qwen2's <|im_end|>) must be found by the backend itself."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(folder)
    config = model_config(name, vocab_size or len(tok), tok)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=config.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session", params=NAMES)
def real(request, tmp_path_factory):
    """(name, model folder, model, tokenizer) for every real tokenizer, loaded the way a
    policy is (`load_policy`: left padding, eos as pad when there is none)."""
    from eapo.models.build import load_policy

    name = request.param
    folder = tokenizer_folder(name)
    path = build_policy(folder, name, tmp_path_factory.mktemp(f"policy-{name}"))
    model, tok = load_policy(path)
    return name, path, model, tok


@pytest.fixture(scope="session")
def qwen2_policy(tmp_path_factory):
    """The random-init Qwen2-architecture model with the real Qwen2 tokenizer, as a folder."""
    folder = tokenizer_folder("qwen2")
    return build_policy(folder, "qwen2", tmp_path_factory.mktemp("policy-qwen2-cli"))


class Scripted:
    """Make `model` write `scripts[row][turn]` (token ids) during `generate`: a forward hook
    sets the last position's logits to 0 on the scripted token and -1e4 elsewhere (so the
    recorded log-prob is 0.0), then eos once a row's segment is used up.

    A forward whose input is all the KV cache holds starts a new `generate` call (the next
    turn); later forwards see one new token each, and the number written so far is the
    cache's growth since the call started."""

    def __init__(self, model, scripts: list[list[list[int]]], eos: int) -> None:
        self.model, self.scripts, self.eos = model, scripts, eos
        self.turn, self.width, self.handle = -1, 0, None

    def __enter__(self) -> "Scripted":
        self.handle = self.model.register_forward_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()

    def _hook(self, module, args, kwargs, output):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        seen, new = cache.get_seq_length(), kwargs["input_ids"].shape[1]  # the cache already holds this input
        if seen == new:
            self.turn, self.width = self.turn + 1, new
        j = seen - self.width
        logits = output.logits
        forced = torch.full_like(logits[:, -1, :], -1e4)
        for row in range(logits.shape[0]):
            turns = self.scripts[row % len(self.scripts)]
            seg = turns[self.turn] if self.turn < len(turns) else []
            forced[row, seg[j] if j < len(seg) else self.eos] = 0.0
        logits[:, -1, :] = forced
        return output
