"""What answers behind `eapo serve-expert`: the built-in oracle, or a local Hugging Face model.

A backend turns chat messages plus sampling settings into one completion. It knows
nothing of HTTP; the app (`app.py`) validates requests and maps errors to status codes.

- `OracleBackend` answers the built-in chain task exactly: it recovers the query from the
  user message in the format of `eapo.experts.messages` (or takes a bare message whole as
  the query) and answers it with the task's `oracle_answer`; an optional `delay_s`
  stands in for a slow model (the concurrency benchmark uses 0.2 s). Token counts are
  character counts, as with the in-process oracle.
- `HFChatBackend` applies the model's chat template to the messages and generates with
  `transformers`, one request at a time under a lock, in a worker thread so the server
  keeps accepting connections. It is for users without vLLM and for tests, not for
  throughput (no batching across requests). Sampling with `temperature > 0` seeds torch's
  global generator with the request's `seed` under that lock: the server process owns its
  RNG, so a seeded request gives the same reply each time.

Backends raise `BadRequest` for a request they cannot answer (the app answers 400).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from eapo.experts.messages import content_text, parse_messages
from eapo.types import ExpertRequest

__all__ = ["BadRequest", "ChatBackend", "Completion", "HFChatBackend", "OracleBackend", "SamplingRequest",
           "build_backend"]


class BadRequest(ValueError):
    """A request the backend cannot answer; the server replies 400 with this message."""


@dataclass(frozen=True)
class SamplingRequest:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"  # "stop" | "length"


class ChatBackend(Protocol):
    name: str

    async def complete(self, messages: list[dict[str, Any]], params: SamplingRequest) -> Completion: ...


def apply_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """`text` cut before the first stop string, and whether it was cut."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


class OracleBackend:
    """Answers with `answer_fn` (default: the built-in chain task's oracle).

    >>> import asyncio
    >>> from eapo.experts.messages import build_messages
    >>> msgs = build_messages(ExpertRequest(problem="47+38-19", query="47+38"))
    >>> asyncio.run(OracleBackend().complete(msgs, SamplingRequest(max_tokens=16))).text
    '85'
    """

    def __init__(self, answer_fn: Callable[[ExpertRequest], str] | None = None, delay_s: float = 0.0,
                 name: str = "oracle") -> None:
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        if answer_fn is None:
            from eapo.tasks.arithmetic import ChainTask

            answer_fn = ChainTask().oracle_answer
        self.answer_fn = answer_fn
        self.delay_s = delay_s
        self.name = name

    async def complete(self, messages: list[dict[str, Any]], params: SamplingRequest) -> Completion:
        try:
            parsed = parse_messages(messages)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text, _ = apply_stop(self.answer_fn(parsed.as_request()), params.stop)
        finish = "stop"
        if len(text) > params.max_tokens:
            text, finish = text[: params.max_tokens], "length"
        prompt = sum(len(content_text(m.get("content"))) for m in messages)
        return Completion(text=text, prompt_tokens=prompt, completion_tokens=len(text), finish_reason=finish)


class HFChatBackend:
    """A local causal LM folder (or hub id already in the local cache) with a chat template."""

    def __init__(self, model_path: str, device: str | None = None, dtype: str = "auto", name: str | None = None) -> None:
        self.model_path = model_path
        self.device = device
        self.dtype = dtype
        self.name = name or model_path
        self._model: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load once (the CLI calls it before serving, so the first request is not slow)."""
        with self._lock:
            if self._model is not None:
                return
            from eapo.models.frozen import load_frozen

            model, tok, _ = load_frozen(self.model_path, device=self.device, dtype=self.dtype)
            self._tok, self._model = tok, model

    async def complete(self, messages: list[dict[str, Any]], params: SamplingRequest) -> Completion:
        if not any(m.get("role") == "user" for m in messages):
            raise BadRequest("the chat has no user message")
        return await asyncio.to_thread(self._generate, messages, params)

    def _generate(self, messages: list[dict[str, Any]], params: SamplingRequest) -> Completion:
        import torch

        self.load()
        tok, model = self._tok, self._model
        chat = [{"role": m["role"], "content": content_text(m.get("content"))} for m in messages]
        if tok.chat_template is not None:
            prompt = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        else:
            prompt = "\n\n".join(m["content"] for m in chat) + "\n\nAnswer:"
            ids = tok(prompt, return_tensors="pt")["input_ids"]
        ids = ids.to(model.device)
        sample = params.temperature > 0
        kwargs: dict[str, Any] = dict(max_new_tokens=params.max_tokens, do_sample=sample,
                                      pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        if sample:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        with self._lock, torch.no_grad():
            if sample and params.seed is not None:
                torch.manual_seed(params.seed)
            out = model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)  # (1, prompt + new)
        new = out[0, ids.shape[1]:].tolist()
        eos = {tok.eos_token_id} | set(_as_list(getattr(model.generation_config, "eos_token_id", None)))
        n = next((i for i, t in enumerate(new) if t in eos), None)
        finish = "stop" if n is not None else "length"
        text = tok.decode(new[:n] if n is not None else new, skip_special_tokens=True)
        text, stopped = apply_stop(text, params.stop)
        return Completion(text=text, prompt_tokens=int(ids.shape[1]), completion_tokens=len(new) if n is None else n + 1,
                          finish_reason="stop" if stopped else finish)


def _as_list(x: Any) -> list[int]:
    if x is None:
        return []
    return [int(x)] if isinstance(x, int) else [int(i) for i in x]


def build_backend(model: str, *, delay_s: float = 0.0, device: str | None = None) -> ChatBackend:
    """`oracle` (the built-in chain task's oracle) or a model folder / hub id."""
    if model == "oracle":
        return OracleBackend(delay_s=delay_s)
    if delay_s:
        raise ValueError("delay_s is for the oracle backend (a stand-in for a slow model)")
    return HFChatBackend(model, device=device)
