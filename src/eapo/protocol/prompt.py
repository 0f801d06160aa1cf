"""The opening of an episode: system text that explains the protocol, then the problem.

The prompt is rendered through the tokenizer's chat template exactly once; every later
turn is appended as token ids (EAPO.md §8, token drift).

Two departures from a plain `apply_chat_template`, both measured on real tokenizers
(tests/real_tokenizers):

- A template that drops the system turn (Phi-3's renders only user and assistant
  messages) would lose the protocol text silently; the system text then opens the user
  message instead, so the policy is always told how to consult and how to answer.
- A tokenizer without a chat template (base models: Llama-3 BPE, GPT-2, DeepSeek-LLM)
  gets the documented fallback: `system + "\n\n" + question + "\n"`, encoded with the
  tokenizer's own special tokens (the BOS a base model was trained with). The engine
  logs this once when it is built (`eapo.models.checks`).
"""

from __future__ import annotations

from typing import Any

from eapo.protocol.tags import Tags

DEFAULT_SYSTEM_PROMPT = (
    "Solve the problem. Think step by step. If you need help, you may consult experts by "
    "writing {consult_open}{query_open}question{query_close}{consult_close} with up to {k} "
    "questions; their replies appear as {expert_open}...{expert_close} and may be refused. "
    "Finish with {answer_open}your answer{answer_close}."
)
NO_CONSULT_SYSTEM_PROMPT = "Solve the problem. Think step by step. Finish with {answer_open}your answer{answer_close}."


def system_text(template: str, tags: Tags, k: int) -> str:
    return template.format(
        consult_open=tags.consult_open,
        consult_close=tags.consult_close,
        query_open=tags.query_open,
        query_close=tags.query_close,
        answer_open=tags.answer_open,
        answer_close=tags.answer_close,
        expert_open=tags.expert_open.replace("{id}", "i"),
        expert_close=tags.expert_close,
        k=k,
    )


def prompt_text(tokenizer: Any, question: str, system: str | None) -> str:
    """The opening as text, through the model's own chat template when it has one (see the
    module docstring for a template without a system turn and for no template at all)."""
    if not getattr(tokenizer, "chat_template", None):
        return (f"{system}\n\n" if system else "") + f"{question}\n"
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if system and system not in text:  # the template dropped the system turn
        merged = [{"role": "user", "content": f"{system}\n\n{question}"}]
        text = tokenizer.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)
    return text


def prompt_ids(tokenizer: Any, question: str, system: str | None) -> list[int]:
    """Token ids of the opening. A rendered template already holds its special tokens (BOS
    included); the no-template fallback gets the tokenizer's own, as a base model expects."""
    text = prompt_text(tokenizer, question, system)
    return list(tokenizer.encode(text, add_special_tokens=not getattr(tokenizer, "chat_template", None)))


def end_ids(tokenizer: Any, generation_config: Any = None) -> tuple[int, ...]:
    """Every id that ends a policy's episode: the tokenizer's eos, the generation config's
    (`eos_token_id`, an id or a list), and the chat template's turn end. One function for
    every backend (HF, vLLM, verl), because they differ for chat models: Qwen2's tokenizer
    has eos `<|endoftext|>` (151643) while a chat turn ends with `<|im_end|>` (151645),
    listed only in the generation config, and some checkpoints forget even that.

    >>> from types import SimpleNamespace as NS
    >>> end_ids(NS(eos_token_id=151643), NS(eos_token_id=[151645, 151643]))
    (151643, 151645)
    >>> end_ids(NS(eos_token_id=2))
    (2,)
    """
    ids = set() if tokenizer.eos_token_id is None else {int(tokenizer.eos_token_id)}
    gen = getattr(generation_config, "eos_token_id", None)
    if isinstance(gen, int):
        ids.add(gen)
    elif gen:
        ids.update(int(i) for i in gen)
    ids.update(turn_end_ids(tokenizer))
    return tuple(sorted(ids))


def turn_end_ids(tokenizer: Any) -> tuple[int, ...]:
    """The special token that closes an assistant turn in the chat template, when it is not
    the tokenizer's eos: Qwen2's `<|im_end|>` (eos is `<|endoftext|>`), Phi-3's `<|end|>`.
    A chat policy ends its answer with it, so generation must stop there and count it as
    eos even when the model's generation config does not list it. () without a template."""
    if not getattr(tokenizer, "chat_template", None):
        return ()
    marker = "\x00eapo-end-probe\x00"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": marker}], tokenize=False)
    except Exception:  # a template that refuses this conversation: rely on eos alone  # noqa: BLE001
        return ()
    if marker not in text:
        return ()
    ids = tokenizer.encode(text[text.rindex(marker) + len(marker):], add_special_tokens=False)
    special = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return (int(ids[0]),) if ids and ids[0] in special else ()
