"""The opening of an episode: system text that explains the protocol, then the problem.

The prompt is rendered through the tokenizer's chat template exactly once; every later
turn is appended as token ids (EAPO.md §8, token drift)."""

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


def prompt_ids(tokenizer: Any, question: str, system: str | None) -> list[int]:
    """Token ids of the opening, through the model's own chat template when it has one."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    else:
        text = (f"{system}\n\n" if system else "") + f"{question}\n"
    return list(tokenizer.encode(text, add_special_tokens=False))
