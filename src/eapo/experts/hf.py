"""A local Hugging Face causal LM as an expert, also the "homogeneous expert" ablation.

Local experts are how the project runs without an API: a stronger model on the same
machine, or, for the homogeneous ablation (EAPO.md §6), a frozen copy of the initial
policy (`HFModelExpert(model_path=<the policy's initial checkpoint>)`).

Why it looks the way it does:

- torch and transformers are imported inside functions, so `import eapo.experts` stays
  light for the network expert that shares this package.
- Generation is blocking, so it runs in `asyncio.to_thread`; the pool's timeout can then
  abandon it without stalling the event loop. Calls are serialised by a lock (one model,
  one batch at a time); the pool sends a member its whole share in one `ask_batch`, which
  is where the throughput comes from. The model loads once, on first use or `load()`;
  call `load()` up front when loading takes longer than the pool's timeout.
- Sampling never touches torch's global RNG. Greedy decoding (`temperature=0`, the
  default) draws nothing. With `temperature > 0` we sample in a logits processor with one
  private `torch.Generator` per request, seeded from `seed` and the request's key, and let
  `generate` run greedily over the result. This departs from wrapping `generate` in
  `torch.random.fork_rng()` + `manual_seed`: fork_rng, run from a worker thread, restores
  the global state on exit and would rewind draws the trainer made meanwhile in another
  thread. Per-request generators also make a reply independent of which other requests
  shared its batch (up to the numerics of padding).
- The prompt is the tokenizer's chat template over a system prompt and one user message
  (the problem, optionally the policy's transcript, then the query). Prompts are not
  truncated; keep queries and transcripts within the model's context.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eapo.experts.base import EXPERTS, request_key, stable_hash
from eapo.types import ExpertReply, ExpertRequest

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_SYSTEM_PROMPT", "HFModelExpert"]

DEFAULT_SYSTEM_PROMPT = (
    "You are an expert consulted by a student who is solving a problem. "
    "Answer the student's question directly, correctly and briefly."
)


class HFModelExpert:
    """Answers with `AutoModelForCausalLM.generate` on `model_path`.

    Token counts in replies are real: prompt tokens without padding, completion tokens up
    to and including the first end-of-sequence token."""

    batches = True

    def __init__(
        self,
        model_path: str,
        name: str = "hf",
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        top_p: float = 1.0,
        device: str | None = None,
        include_problem: bool = True,
        seed: int = 0,
        include_transcript: bool = False,
        dtype: str = "auto",
        max_batch_size: int | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size must be None or >= 1, got {max_batch_size}")
        self.model_path = model_path
        self.name = name
        self.system_prompt = system_prompt
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.device = device
        self.include_problem = include_problem
        self.include_transcript = include_transcript
        self.seed = seed
        self.dtype = dtype
        self.max_batch_size = max_batch_size
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._warned_no_template = False

    # ----------------------------------------------------------------- Expert API

    async def ask(self, request: ExpertRequest) -> ExpertReply:
        return (await self.ask_batch([request]))[0]

    async def ask_batch(self, requests: list[ExpertRequest]) -> list[ExpertReply]:
        if not requests:
            return []
        return await asyncio.to_thread(self.generate, requests)

    # ----------------------------------------------------------------- blocking parts

    def load(self) -> None:
        """Load the tokenizer and model once; safe to call from several threads."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            from eapo.models.frozen import load_frozen

            model, tok, device = load_frozen(self.model_path, device=self.device, dtype=self.dtype)
            tok.padding_side = "left"  # generation appends on the right
            if tok.pad_token_id is None:
                tok.pad_token = tok.eos_token
            logger.info("expert %s loaded %s on %s", self.name, self.model_path, device)
            self._tokenizer = tok
            self._model = model  # last: other threads test it without the lock

    def render(self, request: ExpertRequest) -> str:
        """The prompt text for `request` (chat template applied, generation prompt added)."""
        self.load()
        parts = []
        if self.include_problem:
            parts.append(f"Problem:\n{request.problem}")
        if self.include_transcript and request.transcript:
            parts.append(f"Work so far:\n{request.transcript}")
        parts.append(f"Question:\n{request.query}")
        user = "\n\n".join(parts)
        tok = self._tokenizer
        if tok.chat_template is None:
            if not self._warned_no_template:
                logger.warning("tokenizer of %s has no chat template; using plain text", self.model_path)
                self._warned_no_template = True
            return f"{self.system_prompt}\n\n{user}\n\nAnswer:"
        messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]
        return tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
        )

    def generate(self, requests: Sequence[ExpertRequest]) -> list[ExpertReply]:
        """Blocking: answer `requests`, in chunks of `max_batch_size`."""
        self.load()
        size = self.max_batch_size or len(requests)
        out: list[ExpertReply] = []
        with self._generate_lock:
            for start in range(0, len(requests), size):
                out.extend(self._generate_chunk(requests[start : start + size]))
        return out

    def _generate_chunk(self, requests: Sequence[ExpertRequest]) -> list[ExpertReply]:
        import torch
        from transformers import LogitsProcessorList

        tok, model = self._tokenizer, self._model
        texts = [self.render(r) for r in requests]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=tok.chat_template is None)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        prompt_len = enc["input_ids"].shape[1]
        kwargs: dict[str, Any] = dict(
            max_new_tokens=self.max_new_tokens,
            do_sample=False,  # sampling, when asked for, happens in our processor
            pad_token_id=tok.pad_token_id,
        )
        if self.temperature > 0:
            gens = [
                torch.Generator(device=model.device).manual_seed(stable_hash(self.seed, "hf", request_key(r)) % 2**63)
                for r in requests
            ]
            kwargs["logits_processor"] = LogitsProcessorList([_sampler(self.temperature, self.top_p, gens)])
        with torch.no_grad():
            out = model.generate(**enc, **kwargs)  # (B, prompt_len + new)
        new = out[:, prompt_len:].tolist()
        eos = _eos_ids(model, tok)
        replies = []
        for b, ids in enumerate(new):
            n = next((i + 1 for i, t in enumerate(ids) if t in eos), len(ids))
            replies.append(
                ExpertReply(
                    text=tok.decode(ids[:n], skip_special_tokens=True),
                    expert=self.name,
                    prompt_tokens=int(enc["attention_mask"][b].sum()),
                    completion_tokens=n,
                )
            )
        return replies

    def __repr__(self) -> str:
        return f"HFModelExpert(name={self.name!r}, model_path={self.model_path!r}, temperature={self.temperature})"


def _eos_ids(model: Any, tok: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model.generation_config, "eos_token_id", None), tok.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif source is not None:
            ids.update(int(i) for i in source)
    return ids


def _sampler(temperature: float, top_p: float, generators: list[torch.Generator]) -> Any:
    """A logits processor that samples row b with `generators[b]` and leaves only the drawn
    token finite, so greedy `generate` emits exactly the sample."""
    import torch
    from transformers import LogitsProcessor

    class _SeededSampler(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            probs = torch.softmax(scores.float() / temperature, dim=-1)  # (B, V)
            if top_p < 1.0:
                sorted_p, order = probs.sort(dim=-1, descending=True)
                # drop a token when the mass before it already reaches top_p (keeps >= 1)
                drop = (sorted_p.cumsum(dim=-1) - sorted_p) >= top_p
                sorted_p = sorted_p.masked_fill(drop, 0.0)
                probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
            out = torch.full_like(scores, float("-inf"))
            for b, gen in enumerate(generators):
                token = torch.multinomial(probs[b], 1, generator=gen)
                out[b, token] = 0.0
            return out

    return _SeededSampler()


@EXPERTS.register("hf")
def _make_hf(**config: Any) -> HFModelExpert:
    return HFModelExpert(**config)
