"""Generation with vLLM for the multi-turn rollout, through the engine TRL builds.

With `use_vllm=True` (in `rl.trl`), TRL 1.16's `GRPOTrainer` owns a `VLLMGeneration`
(`trainer.vllm_generation`) and syncs the policy's weights into it before every call of
our rollout function (`GRPOTrainer._generate`, "Keep vLLM weights in sync for custom
rollouts"). TRL's own `VLLMGeneration.generate` does not fit a multi-turn rollout: its
sampling settings are fixed at construction (one `max_completion_length`, no stop tokens),
and in server mode it gathers every process's prompts to the main process, a collective
that deadlocks when processes need different numbers of turns. So this backend calls the
two objects underneath it directly:

- **colocate**: `vg.llm.generate(prompts, sampling_params=[one SamplingParams per
  context], use_tqdm=False)` on this process's own vLLM engine (vLLM 0.22-0.31, the range
  TRL 1.16 supports). Per-context `max_tokens` and seed; the finish reason comes from
  vLLM (`finish_reason`, `stop_reason`).
- **server**: `VLLMClient.generate(prompts=token ids, n=1, ..., max_tokens=...,
  logprobs=0, generation_kwargs={stop_token_ids, stop, bad_words, ...})`, which posts to
  the server's `/v1/completions`. The main process uses TRL's client (the one that holds
  the weight-sync communicator); every other process opens its own HTTP-only client to
  the same server, so processes never wait for each other. One request per distinct
  `max_tokens`. No seed is sent: one seed for a whole request would make identical
  contexts (a group's first turn) sample identical continuations. The client drops the
  finish reason, so it is read off the tokens as the HF backend does.

Both: the sampler's log-probabilities (TRL starts vLLM with `logprobs_mode=
"processed_logprobs"`, i.e. after temperature and top-p, like `HFBackend`); stop on EOS
and on the closing tags (single-token tags as `stop_token_ids`, longer ones as `stop`
strings with `include_stop_str_in_output`); forbidden sequences (the consult tag under
`forbid`) as vLLM `bad_words`, which bans token sequences only; rows that still wrote a
forbidden string through another tokenization are cut and resampled at that position with
the completing ids banned through `logit_bias` (`eapo.rollout.forbid.hold`), so the text
lock holds as in the HF backend.

Not supported (a clear error): colocate with `vllm_tensor_parallel_size > 1` (each TP
group's generate is a collective, with the same deadlock as above) and
`vllm_enable_sleep_mode` (TRL wakes and puts the engine to sleep inside its own generate).

What was run: only against `tests/rollout/fake_vllm.py`, a fake with the exact call
signatures of vLLM's `LLM.generate`/`SamplingParams`/`RequestOutput` and TRL 1.16's
`VLLMClient.generate` (docs/SCALING.md says what was and was not run).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eapo.protocol.prompt import end_ids
from eapo.rollout.backend import Generation, SamplingParams, check_limits
from eapo.rollout.forbid import TextBan, hold

log = logging.getLogger(__name__)


@dataclass
class Completion:
    """One continuation as an engine returns it. `finish_reason` is vLLM's ("stop",
    "length") or None when the engine does not say; `stop_reason` is the stop token id or
    string when vLLM stopped on one (None on EOS)."""

    ids: list[int]
    logprobs: list[float] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class VLLMEngine(Protocol):
    def complete(self, prompts: list[list[int]], requests: list[dict[str, Any]]) -> list[Completion]:
        """One completion per prompt; `requests[i]` holds vLLM `SamplingParams` keywords."""
        ...


class ColocateEngine:
    """This process's `vllm.LLM` (TRL: `trainer.vllm_generation.llm`)."""

    def __init__(self, llm: Any, sampling_params_cls: Any) -> None:
        self.llm = llm
        self.sampling_params_cls = sampling_params_cls

    def complete(self, prompts: list[list[int]], requests: list[dict[str, Any]]) -> list[Completion]:
        params = [self.sampling_params_cls(**r) for r in requests]
        outputs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], sampling_params=params,
                                    use_tqdm=False)
        completions = []
        for out in outputs:
            o = out.outputs[0]
            ids = list(o.token_ids)
            logprobs = None if o.logprobs is None else [float(pos[tok].logprob) for pos, tok in zip(o.logprobs, ids)]
            completions.append(Completion(ids, logprobs, o.finish_reason, o.stop_reason))
        return completions


class ServerEngine:
    """A vLLM server through TRL's `VLLMClient` (one request per distinct `max_tokens`)."""

    # SamplingParams keywords VLLMClient.generate takes as its own arguments
    DIRECT = ("n", "repetition_penalty", "temperature", "top_p", "top_k", "min_p", "max_tokens", "logprobs")

    def __init__(self, client: Any) -> None:
        self.client = client

    def complete(self, prompts: list[list[int]], requests: list[dict[str, Any]]) -> list[Completion]:
        by_shape: dict[tuple, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            by_shape[_freeze({k: v for k, v in r.items() if k != "seed"})].append(i)
        out: list[Completion | None] = [None] * len(prompts)
        for shape, rows in by_shape.items():
            request = {k: list(v) if isinstance(v, tuple) else v for k, v in shape}
            direct = {k: request.pop(k) for k in self.DIRECT if k in request}
            res = self.client.generate(prompts=[list(prompts[i]) for i in rows], **direct,
                                       generation_kwargs=request or None)
            logprobs = res.get("logprobs")
            for j, i in enumerate(rows):
                ids = list(res["completion_ids"][j])
                lps = None
                if logprobs is not None:
                    lps = [_sampled_logprob(lp, tids, tok)
                           for lp, tids, tok in zip(logprobs[j], res["logprob_token_ids"][j], ids)]
                out[i] = Completion(ids, lps)
        return out  # type: ignore[return-value]


class VLLMBackend:
    """The generation-backend protocol (`eapo.rollout.backend`) over a vLLM engine."""

    def __init__(self, engine: VLLMEngine, tokenizer: Any, eos_token_ids: Sequence[int] | None = None,
                 *, per_request_seed: bool = True) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        if eos_token_ids is None:
            eos_token_ids = end_ids(tokenizer)
        self.eos_token_ids = tuple(sorted(set(eos_token_ids)))
        self.per_request_seed = per_request_seed
        self.calls = 0
        self._bans: dict[tuple[str, ...], TextBan] = {}

    @classmethod
    def from_trainer(cls, trainer: Any, tokenizer: Any) -> VLLMBackend:
        """The backend for TRL's vLLM engine in this process (`use_vllm=True`)."""
        vg = trainer.vllm_generation
        eos = _eos_ids(tokenizer, trainer)
        if vg.mode == "colocate":
            if vg.tensor_parallel_size > 1:
                raise NotImplementedError(
                    "colocated vLLM with vllm_tensor_parallel_size > 1 is not supported by the multi-turn rollout: "
                    "each generate is a collective of the TP group and ranks need different numbers of turns. "
                    "Use vllm_mode='server' for tensor-parallel generation.")
            if vg.enable_sleep_mode:
                raise NotImplementedError("vllm_enable_sleep_mode is not supported by the EAPO rollout; turn it off")
            from vllm import SamplingParams as VLLMSamplingParams

            return cls(ColocateEngine(vg.llm, VLLMSamplingParams), tokenizer, eos)
        if trainer.accelerator.is_main_process:
            client = vg.vllm_client
        else:  # an HTTP-only client of this process (no weight-sync communicator), made once
            client = getattr(vg, "_eapo_http_client", None)
            if client is None:
                from trl.generation.vllm_client import VLLMClient

                client = VLLMClient(base_url=vg.server_base_url, host=vg.server_host, server_port=vg.server_port,
                                    group_port=vg.group_port, connection_timeout=vg.server_timeout)
                vg._eapo_http_client = client
        return cls(ServerEngine(client), tokenizer, eos, per_request_seed=False)

    def request(self, params: SamplingParams, max_tokens: int, row: int) -> dict[str, Any]:
        """vLLM `SamplingParams` keywords for one context."""
        r: dict[str, Any] = dict(
            n=1, temperature=params.temperature, top_p=params.top_p if params.temperature > 0 else 1.0, top_k=0,
            max_tokens=int(max_tokens), logprobs=0, skip_special_tokens=False,
            stop_token_ids=sorted(set(params.stop_token_ids) | set(self.eos_token_ids)),
        )
        if params.stop_strings:
            r.update(stop=list(params.stop_strings), include_stop_str_in_output=True)
        if params.forbidden:
            r["bad_words"] = list(params.forbidden)  # token-level only: `generate` holds the rest
        if params.banned_ids:
            r["logit_bias"] = {int(i): -100.0 for i in params.banned_ids}
        if self.per_request_seed:
            r["seed"] = _row_seed(params.seed, row)
        return r

    def generate(self, contexts: list[list[int]], max_new_tokens: list[int], params: SamplingParams) -> list[Generation]:
        if not contexts:
            return []
        check_limits(contexts, max_new_tokens)
        self.calls += 1
        gens = self._generate(contexts, max_new_tokens, params)
        if params.forbidden:  # vLLM bans words as token sequences; the text lock is ours
            gens = hold(self._generate, self._ban(params.forbidden), contexts, max_new_tokens, params, gens)
        return gens

    def _generate(self, contexts: list[list[int]], max_new_tokens: list[int], params: SamplingParams) -> list[Generation]:
        requests = [self.request(params, m, i) for i, m in enumerate(max_new_tokens)]
        completions = self.engine.complete([list(c) for c in contexts], requests)
        if len(completions) != len(contexts):
            raise RuntimeError(f"vLLM returned {len(completions)} completions for {len(contexts)} contexts")
        return [self._generation(c, limit, params) for c, limit in zip(completions, max_new_tokens)]

    def _ban(self, strings: tuple[str, ...]) -> TextBan:
        if strings not in self._bans:
            self._bans[strings] = TextBan(self.tokenizer, strings)
        return self._bans[strings]

    def _generation(self, c: Completion, limit: int, params: SamplingParams) -> Generation:
        if c.logprobs is None:
            raise RuntimeError("vLLM returned no log-probabilities: the rollout needs the sampler's (logprobs=0)")
        ids, logprobs = list(c.ids), list(c.logprobs)
        finish = self._finish(c, ids, params)
        if len(ids) > limit:
            ids, logprobs, finish = ids[:limit], logprobs[:limit], "length"
        return Generation(ids=ids, logprobs=logprobs, finish=finish)

    def _finish(self, c: Completion, ids: list[int], params: SamplingParams) -> str:
        if c.finish_reason == "length":
            return "length"
        if ids and ids[-1] in self.eos_token_ids:
            return "eos"
        if c.finish_reason == "stop":
            return "stop"
        # the engine did not say (server): read it off the tokens
        if ids and ids[-1] in params.stop_token_ids:
            return "stop"
        if params.stop_strings:
            text = self.tokenizer.decode(ids, skip_special_tokens=False)
            if any(s in text for s in params.stop_strings):
                return "stop"
        return "length"


def _row_seed(seed: int, row: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{row}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF


def _sampled_logprob(position: Sequence[float | None], token_ids: Sequence[int], sampled: int) -> float:
    """The sampled token's log-prob at one position of `VLLMClient`'s output (its entries
    are sorted by probability, the sampled token among them)."""
    for lp, tid in zip(position, token_ids):
        if tid == sampled:
            return float("nan") if lp is None else float(lp)
    raise RuntimeError(f"vLLM's log-probs at a position do not include the sampled token {sampled}")


def _freeze(d: dict[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in d.items()))


def _eos_ids(tokenizer: Any, trainer: Any) -> tuple[int, ...]:
    ids = set(end_ids(tokenizer))
    ids.update(int(i) for i in getattr(trainer, "eos_token_ids", ()) or ())
    return tuple(sorted(ids))
