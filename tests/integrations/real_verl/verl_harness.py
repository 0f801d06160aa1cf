"""What stands in for the GPU half of verl in the real-verl tier: the vLLM server actor.

Everything else is verl 0.9.1's own code: `ScriptedClient` *is* verl's `LLMServerClient`
(its `generate` runs unchanged: trace decorator, request-id handling, the pops of
`mm_processor_output`/`priority`, the `min/max_global_steps` bookkeeping); only the two
Ray calls to the global load balancer are replaced, and the server handle it gets back is
`ScriptedServer`, whose `generate.remote(...)` has the signature of verl's vLLM server
(`vLLMHttpServer.generate`, verl/workers/rollout/vllm_rollout/vllm_async_server.py) and does
with `sampling_params` what that server does before building vLLM's `SamplingParams`:
`max_tokens` popped (default from the rollout lengths) and clamped to the model length,
`logprobs` -> 0/None, `repetition_penalty`/`ignore_eos` defaulted, then
`SamplingParams(max_tokens=..., **sampling_params)` (the fake of tests/rollout/fake_vllm.py:
vLLM's fields, unknown keys raise). Like vLLM it stops on the generation config's EOS ids
(unless `ignore_eos`), on `stop_token_ids` (kept) and on stop strings (the token completing
one is kept), and returns verl's real `TokenOutput`.

The "policy" is `script(decoded context) -> text`; the text is encoded with the real
tokenizer (and `<|im_end|>` appended when `end_turn`), and every token gets log-prob -0.5.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("verl", reason="verl is not installed (make test-verl builds .venv-verl with it)")

from verl.workers.rollout.llm_server import LLMServerClient  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "rollout"))  # noqa: E402
import fake_vllm  # noqa: E402

sys.path.pop(0)

LOGPROB = -0.5
IM_END = 151645  # Qwen2's end of a chat turn; its eos_token is <|endoftext|> 151643


class _Remote:
    """`actor.method.remote(...)`: awaitable, as a Ray ObjectRef is."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)


class ScriptedServer:
    def __init__(self, tokenizer: Any, script: Callable[[str], str], eos_token_ids: Sequence[int], *,
                 max_model_len: int, prompt_length: int, response_length: int, global_steps: int | None = None,
                 end_turn: str | None = "<|im_end|>") -> None:
        self.tok, self.script = tokenizer, script
        self.eos_token_ids = set(int(i) for i in eos_token_ids)
        self.max_model_len, self.prompt_length, self.response_length = max_model_len, prompt_length, response_length
        self.global_steps = global_steps
        self.end_turn = end_turn
        self.calls: list[dict[str, Any]] = []
        self.generate = _Remote(self._generate)

    async def _generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                        image_data: list[Any] | None = None, video_data: list[Any] | None = None,
                        audio_data: list[Any] | None = None, mm_processor_kwargs: dict[str, Any] | None = None,
                        priority: int = 0, kv_transfer_params: dict | None = None) -> TokenOutput:
        sampling_params = copy.deepcopy(sampling_params)  # Ray serialises the arguments
        received = dict(sampling_params)
        max_possible = self.max_model_len - len(prompt_ids)
        if max_possible < 1:
            raise ValueError(f"Prompt length ({len(prompt_ids)}) leaves no room to generate")
        if "max_tokens" in sampling_params:
            max_tokens = sampling_params.pop("max_tokens")
        elif "max_new_tokens" in sampling_params:
            max_tokens = sampling_params.pop("max_new_tokens")
        else:
            max_tokens = min(self.response_length, self.prompt_length + self.response_length - len(prompt_ids))
        max_tokens = max(1, min(max_tokens, max_possible))
        sampling_params["logprobs"] = 0 if sampling_params.pop("logprobs", False) else None
        sampling_params.setdefault("repetition_penalty", 1.0)
        sampling_params.setdefault("ignore_eos", False)
        params = fake_vllm.SamplingParams(max_tokens=max_tokens, **sampling_params)  # unknown keys raise

        stops = set(params.stop_token_ids or [])
        if not params.ignore_eos:
            stops |= self.eos_token_ids
        out, logprobs = self.policy(list(prompt_ids), max_tokens, lambda ids: self._stopped(ids, stops, params))
        self.calls.append({"request_id": request_id, "prompt_ids": list(prompt_ids), "received": received,
                           "params": params, "token_ids": out})
        return TokenOutput(token_ids=out, log_probs=logprobs if params.logprobs is not None else None,
                           stop_reason="completed", extra_fields={"global_steps": self.global_steps})

    def _stopped(self, ids: list[int], stops: set[int], params: Any) -> bool:
        if ids[-1] in stops:
            return True
        strings = [params.stop] if isinstance(params.stop, str) else (params.stop or [])
        return any(s in self.tok.decode(ids, skip_special_tokens=False) for s in strings)

    def policy(self, prompt_ids: list[int], max_tokens: int, stopped: Callable[[list[int]], bool]):
        """The scripted policy: the script's text, tokenized, cut where vLLM would stop."""
        text = self.script(self.tok.decode(prompt_ids, skip_special_tokens=False))
        target = self.tok.encode(text, add_special_tokens=False)
        if self.end_turn:
            target.append(self.tok.convert_tokens_to_ids(self.end_turn))
        out: list[int] = []
        for t in target[:max_tokens]:
            out.append(t)
            if stopped(out):
                break
        return out, [LOGPROB] * len(out)


class ModelServer(ScriptedServer):
    """The same server with a real (tiny, random-init) HF model sampling the tokens, seeded,
    at temperature 1, with the log-probs of the sampled tokens (no KV cache: a few dozen
    tokens of a 1-layer model)."""

    def __init__(self, tokenizer: Any, model: Any, eos_token_ids: Sequence[int], *, seed: int = 0, **kw: Any) -> None:
        super().__init__(tokenizer, lambda text: "", eos_token_ids, **kw)
        import torch

        self.model, self.gen = model, torch.Generator().manual_seed(seed)

    def policy(self, prompt_ids: list[int], max_tokens: int, stopped: Callable[[list[int]], bool]):
        import torch

        out: list[int] = []
        logprobs: list[float] = []
        with torch.no_grad():
            for _ in range(max_tokens):
                logits = self.model(torch.tensor([prompt_ids + out]), logits_to_keep=1).logits[0, -1].float()
                lp = torch.log_softmax(logits, -1)
                t = int(torch.multinomial(lp.exp(), 1, generator=self.gen))
                out.append(t)
                logprobs.append(float(lp[t]))
                if stopped(out):
                    break
        return out, logprobs


class ScriptedClient(LLMServerClient):
    """verl's `LLMServerClient` with one server and no Ray load balancer."""

    def __init__(self, config: Any, server: ScriptedServer) -> None:
        super().__init__(config, load_balancer_handle=None)
        self.server = server
        self.acquired: list[dict[str, Any]] = []

    async def _acquire_server(self, request_id: str, **extra: Any) -> tuple[str, Any]:
        self.acquired.append({"request_id": request_id, **extra})
        return "server-0", self.server

    def _release_server(self, server_id: str, request_id: str | None = None) -> None:
        pass


def oracle_pool(cfg):
    """pool_factory of the tier's EAPO config: two experts that evaluate the chain task."""
    from eapo.experts import ExpertPool, OracleExpert
    from eapo.tasks.arithmetic import evaluate_chain

    return ExpertPool([OracleExpert(lambda r: str(evaluate_chain(r.query)), name=f"o{i}") for i in range(2)])
