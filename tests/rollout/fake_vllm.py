"""A fake of exactly the vLLM and TRL interfaces `eapo.rollout.vllm_backend` calls.

vLLM cannot be installed on these machines, so the backend is tested against this. The
signatures and field names are copied from the versions targeted:

- `SamplingParams`: vLLM `vllm/sampling_params.py` (the fields of the 0.2x-0.3x series
  that TRL 1.16 supports, vLLM 0.22-0.31); unknown keywords raise `TypeError`, as
  constructing vLLM's msgspec struct does.
- `LLM.generate(prompts, sampling_params=None, *, use_tqdm=True, lora_request=None,
  priority=None)` returning `RequestOutput(request_id, prompt, prompt_token_ids,
  prompt_logprobs, outputs, finished)` with `CompletionOutput(index, text, token_ids,
  cumulative_logprob, logprobs, finish_reason, stop_reason)` and
  `Logprob(logprob, rank, decoded_token)` (vLLM `vllm/outputs.py`, `vllm/logprobs.py`).
- `VLLMClient.generate(prompts, features=None, n=1, repetition_penalty=1.0,
  temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, max_tokens=16, logprobs=0,
  structured_outputs_regex=None, generation_kwargs=None)` returning `prompt_ids`,
  `completion_ids`, `logprobs`, `logprob_token_ids` (TRL 1.16
  `trl/generation/vllm_client.py`); the server side maps the request body onto
  `SamplingParams` as vLLM's OpenAI server does.

What the fake engine does as vLLM does: per-request seeded sampling (a shared generator
when no seed), temperature (0 = greedy) and top-p applied before sampling, log-probs of
the processed distribution ("processed_logprobs", as TRL configures vLLM), EOS and
`stop_token_ids` kept in `token_ids` (stop_reason = the id, None for EOS), stop strings
ending generation on the token that completes them (token ids kept, text cut unless
`include_stop_str_in_output`), `max_tokens` ("length"), `logit_bias` added to the logits,
and `bad_words` blocking the last token of a word whose other tokens were just generated. The "model" is a function
`next_token(prompt_ids, generated_ids) -> {token id: probability}`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(kw_only=True)
class SamplingParams:
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    detokenize: bool = True
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    structured_outputs: Any = None
    logit_bias: dict[int, float] | None = None
    allowed_token_ids: list[int] | None = None
    extra_args: dict[str, Any] | None = None
    bad_words: list[str] | None = None

    def __post_init__(self) -> None:  # the checks of vLLM's _verify_args that apply here
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}.")
        if self.temperature < 0:
            raise ValueError(f"temperature must be non-negative, got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < -1:
            raise ValueError(f"top_k must be -1 (disable) or at least 1, got {self.top_k}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")
        if self.logprobs is not None and self.logprobs < -1:
            raise ValueError(f"logprobs must be non-negative or -1, got {self.logprobs}.")


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: Sequence[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    routed_experts: Any = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool


NextToken = Callable[[list[int], list[int]], dict[int, float]]


@dataclass
class FakeLLM:
    """`vllm.LLM` with a scripted next-token distribution."""

    next_token: NextToken
    tokenizer: Any
    eos_token_id: int
    seed: int = 0
    calls: list[tuple[list[list[int]], list[SamplingParams]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._requests = 0

    def generate(self, prompts: Any, sampling_params: SamplingParams | Sequence[SamplingParams] | None = None, *,
                 use_tqdm: bool = True, lora_request: Any = None, priority: Any = None) -> list[RequestOutput]:
        prompts = [p["prompt_token_ids"] if isinstance(p, dict) else p for p in prompts]
        if sampling_params is None:
            sampling_params = SamplingParams()
        params = list(sampling_params) if isinstance(sampling_params, Sequence) else [sampling_params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        self.calls.append(([list(p) for p in prompts], params))
        outputs = []
        for prompt, sp in zip(prompts, params):
            rng = random.Random(sp.seed) if sp.seed is not None else self._rng
            outs = [self._one(list(prompt), sp, rng, i) for i in range(sp.n)]
            self._requests += 1
            outputs.append(RequestOutput(str(self._requests), None, list(prompt), None, outs, True))
        return outputs

    def _one(self, prompt: list[int], sp: SamplingParams, rng: random.Random, index: int) -> CompletionOutput:
        stops = [sp.stop] if isinstance(sp.stop, str) else list(sp.stop or [])
        bad = [self.tokenizer.encode(w, add_special_tokens=False) for w in sp.bad_words or []]
        ids: list[int] = []
        lps: list[dict[int, Logprob]] = []
        finish, reason, text = "length", None, ""
        while sp.max_tokens is None or len(ids) < sp.max_tokens:
            dist = dict(self.next_token(prompt, ids))
            for t, b in (sp.logit_bias or {}).items():  # added to the logits, as vLLM does
                if t in dist:
                    dist[t] *= math.exp(b)
            for word in bad:  # block the word's last token when the rest was just generated
                prefix = word[:-1]
                if not prefix or ids[-len(prefix):] == prefix:
                    dist.pop(word[-1], None)
            probs = _process(dist, sp.temperature, sp.top_p)
            tok = _draw(probs, rng, greedy=sp.temperature == 0)
            ids.append(tok)
            lps.append({tok: Logprob(math.log(probs[tok]), 1, self.tokenizer.decode([tok]))})
            if tok == self.eos_token_id and not sp.ignore_eos:
                finish, reason = "stop", None
                break
            if tok in (sp.stop_token_ids or []):
                finish, reason = "stop", tok
                break
            text = self.tokenizer.decode(ids, skip_special_tokens=sp.skip_special_tokens)
            hit = next((s for s in stops if s in text), None)
            if hit is not None:
                finish, reason = "stop", hit
                cut = text.index(hit) + (len(hit) if sp.include_stop_str_in_output else 0)
                text = text[:cut]
                break
        else:
            text = self.tokenizer.decode(ids, skip_special_tokens=sp.skip_special_tokens)
        cumulative = sum(next(iter(d.values())).logprob for d in lps)
        return CompletionOutput(index, text, ids, cumulative, lps if sp.logprobs is not None else None,
                                finish_reason=finish, stop_reason=reason)


def _process(dist: dict[int, float], temperature: float, top_p: float) -> dict[int, float]:
    total = sum(dist.values())
    probs = {t: p / total for t, p in dist.items() if p > 0}
    if temperature > 0 and temperature != 1.0:
        scaled = {t: math.exp(math.log(p) / temperature) for t, p in probs.items()}
        z = sum(scaled.values())
        probs = {t: p / z for t, p in scaled.items()}
    if top_p < 1.0:
        kept, mass = {}, 0.0
        for t, p in sorted(probs.items(), key=lambda kv: (-kv[1], kv[0])):
            kept[t] = p
            mass += p
            if mass >= top_p:
                break
        z = sum(kept.values())
        probs = {t: p / z for t, p in kept.items()}
    return probs


def _draw(probs: dict[int, float], rng: random.Random, greedy: bool) -> int:
    items = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))
    if greedy:
        return items[0][0]
    u, acc = rng.random(), 0.0
    for t, p in items:
        acc += p
        if u < acc:
            return t
    return items[-1][0]


class FakeVLLMClient:
    """TRL 1.16's `VLLMClient` in front of a `FakeLLM` standing for the vLLM server."""

    instances: list[FakeVLLMClient] = []

    def __init__(self, base_url: str | None = None, host: str = "0.0.0.0", server_port: int = 8000,
                 group_port: int = 51216, connection_timeout: float = 0.0, *, server: FakeLLM | None = None):
        self.base_url = base_url or f"http://{host}:{server_port}"
        self.group_port = group_port
        self.server = server
        self.requests: list[dict[str, Any]] = []
        FakeVLLMClient.instances.append(self)

    def generate(self, prompts: list[str] | list[list[int]], features: list[dict | None] | None = None, n: int = 1,
                 repetition_penalty: float = 1.0, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 min_p: float = 0.0, max_tokens: int = 16, logprobs: int | None = 0,
                 structured_outputs_regex: str | None = None,
                 generation_kwargs: dict | None = None) -> dict[str, list[list[int]]]:
        sampling_params = {"n": n, "repetition_penalty": repetition_penalty, "temperature": temperature,
                           "top_p": top_p, "top_k": top_k, "min_p": min_p, "max_tokens": max_tokens,
                           "logprobs": logprobs}
        if structured_outputs_regex is not None:
            sampling_params["structured_outputs"] = {"regex": structured_outputs_regex}
        sampling_params.update(generation_kwargs or {})
        self.requests.append(dict(sampling_params, prompts=[list(p) for p in prompts]))
        sp = SamplingParams(**sampling_params)  # the server rejects what SamplingParams does not take
        outs = self.server.generate([{"prompt_token_ids": p} for p in prompts], sampling_params=sp)
        choices = [o for out in outs for o in out.outputs]  # prompt-major, n per prompt
        return {
            "prompt_ids": [out.prompt_token_ids for out in outs],
            "completion_ids": [list(c.token_ids) for c in choices],
            "logprobs": None if logprobs is None else
            [[[next(iter(d.values())).logprob] for d in c.logprobs] for c in choices],
            "logprob_token_ids": None if logprobs is None else [[[next(iter(d))] for d in c.logprobs] for c in choices],
        }


@dataclass
class FakeVLLMGeneration:
    """The attributes of TRL 1.16's `VLLMGeneration` that the backend reads."""

    mode: str
    llm: FakeLLM | None = None
    vllm_client: FakeVLLMClient | None = None
    tensor_parallel_size: int = 1
    enable_sleep_mode: bool = False
    server_base_url: str | None = None
    server_host: str = "0.0.0.0"
    server_port: int = 8000
    group_port: int = 51216
    server_timeout: float = 240.0

