"""What a policy's model and tokenizer must satisfy before anything is rolled out or trained.

Why one function: each of these fails late and quietly otherwise. A model with fewer
embedding rows than its tokenizer has tokens (Llama-3's BPE has 128257 tokens, one past a
128256-row embedding) samples fine until an id past the end is fed back, then fails deep
inside an index kernel, or on GPU corrupts memory. A tag the tokenizer cannot round-trip
(`decode(encode(tag)) != tag`: a normalizer, a missing character) can never be parsed
from the policy's text, so every consultation and answer is silently lost. A tokenizer
without a chat template is legal (base models) but changes what the prompt looks like, so
it is said once, when the policy is loaded.

Callers: `load_policy` (model and tokenizer, when they are loaded for policy use) and
`RolloutEngine` (tokenizer and the protocol's tags), so the error comes before any
rollout or training step. Not checked here: that the model was trained with this
tokenizer (nothing in the files can tell).
"""

from __future__ import annotations

import logging
from typing import Any

from eapo.protocol.tags import Tags

log = logging.getLogger(__name__)


class PolicyCheckError(ValueError):
    """A model or tokenizer that cannot serve as the policy; the message names the problem."""


def check_policy(tokenizer: Any, *, model: Any = None, vocab_size: int | None = None, tags: Tags | None = None,
                 name: str = "the policy") -> None:
    """Raise PolicyCheckError naming the first problem found; log the no-template fallback.

    `model`: its vocabulary (input and output embedding rows) must cover `len(tokenizer)`,
    and the missing chat template is logged. `vocab_size`: the same check from the model's
    config, for an engine that loads the weights itself (vLLM). `tags`: every protocol tag
    must round-trip through the tokenizer."""
    if model is not None or vocab_size is not None:
        sizes = _embedding_rows(model) if model is not None else {"config vocab_size": int(vocab_size)}
        _check_vocabulary(sizes, tokenizer, name)
        if not getattr(tokenizer, "chat_template", None):
            log.info("%s: the tokenizer has no chat template; prompts use the plain fallback "
                     "(system text, a blank line, the question; eapo.protocol.prompt)", name)
    if tags is not None:
        _check_tags(tokenizer, tags, name)


def _embedding_rows(model: Any) -> dict[str, int]:
    sizes = {}
    for side, get in (("input", "get_input_embeddings"), ("output", "get_output_embeddings")):
        module = getattr(model, get, lambda: None)()
        weight = getattr(module, "weight", None)
        if weight is not None:
            sizes[side] = int(weight.shape[0])
    return sizes


def _check_vocabulary(sizes: dict[str, int], tokenizer: Any, name: str) -> None:
    n_tokens = len(tokenizer)
    rows = min(sizes.values(), default=None)
    if rows is not None and rows < n_tokens:
        raise PolicyCheckError(
            f"{name}: the model's vocabulary is smaller than its tokenizer's: {rows} embedding rows "
            f"({', '.join(f'{k} {v}' for k, v in sizes.items())}) but len(tokenizer) = {n_tokens}, so token ids "
            f"{rows}..{n_tokens - 1} would index past the embedding. Use the tokenizer the model was trained "
            "with, or resize the model (model.resize_token_embeddings(len(tokenizer))) and train the new rows.")


def _check_tags(tokenizer: Any, tags: Tags, name: str) -> None:
    strings = dict(consult_open=tags.consult_open, consult_close=tags.consult_close, query_open=tags.query_open,
                   query_close=tags.query_close, answer_open=tags.answer_open, answer_close=tags.answer_close,
                   expert_open=tags.expert_open.replace("{id}", "0"), expert_close=tags.expert_close,
                   notice_open=tags.notice_open, notice_close=tags.notice_close)
    for key, tag in strings.items():
        ids = list(tokenizer.encode(tag, add_special_tokens=False))
        back = tokenizer.decode(ids, skip_special_tokens=False)
        if back != tag:
            raise PolicyCheckError(
                f"{name}: the tokenizer cannot round-trip the tag rollout.tags.{key} = {tag!r}: it encodes to "
                f"{ids}, which decodes to {back!r}, so the parser could never read it from the policy's text. "
                "Choose a tag made of characters the tokenizer keeps as they are.")
