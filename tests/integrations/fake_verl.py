"""A fake of verl's generation server interface, as the EAPO agent loop calls it.

verl 0.9.1 `LLMServerClient.generate(self, request_id, *, prompt_ids, sampling_params,
image_data=None, video_data=None, audio_data=None, mm_processor_kwargs=None, **kwargs)
-> TokenOutput` (verl/workers/rollout/llm_server.py), `TokenOutput(token_ids, log_probs,
routed_experts, stop_reason, num_preempted, extra_fields)` (verl/workers/rollout/replica.py).
The server passes `sampling_params` to vLLM's `SamplingParams` (vllm_async_server.py), so
the fake checks them the same way (tests/rollout/fake_vllm.py) and honours `max_tokens`,
`stop_token_ids` (kept), `stop` strings, EOS. The "policy" is `script(context text) ->
segment text`; every token gets log-prob -0.5. `make test-verl` checks the signature of
`generate` and the fields of `TokenOutput` against the installed verl
(tests/integrations/real_verl/test_signatures_real.py).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent / "rollout"))
import fake_vllm  # noqa: E402

sys.path.pop(0)


@dataclass
class TokenOutput:  # verl.workers.rollout.replica.TokenOutput (a pydantic model there)
    token_ids: list[int]
    log_probs: list[float] | None = None
    routed_experts: Any = None
    stop_reason: str | None = None
    num_preempted: int | None = None
    extra_fields: dict[str, Any] = field(default_factory=dict)


class FakeServerManager:
    def __init__(self, tokenizer, script, delay_s: float = 0.0, token_output=TokenOutput):
        self.tok, self.script, self.delay_s, self.token_output = tokenizer, script, delay_s, token_output
        self.requests: list[dict[str, Any]] = []

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, video_data=None,
                       audio_data=None, mm_processor_kwargs=None, **kwargs):
        sp = dict(sampling_params)
        self.requests.append({"request_id": request_id, **sp})
        sp["logprobs"] = 0 if sp.pop("logprobs", False) else None  # as verl's vLLM server does
        params = fake_vllm.SamplingParams(**sp)  # unknown keys raise, as vLLM's would
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self.script(self.tok.decode(list(prompt_ids)))
        target = self.tok.encode(text, add_special_tokens=False) + [self.tok.eos_token_id]
        out: list[int] = []
        for t in target[: params.max_tokens]:
            out.append(t)
            if t == self.tok.eos_token_id or t in (params.stop_token_ids or []):
                break
            if any(s in self.tok.decode(out) for s in params.stop or []):
                break
        return self.token_output(token_ids=out, log_probs=[-0.5] * len(out), stop_reason="completed")
