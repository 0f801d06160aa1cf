"""A scripted generation backend for tests and benchmarks: no model, exact control.

`script(context_ids, turn) -> list[int]` says what the "policy" writes next; the backend
applies the same stop rules as a real one (first stop or EOS token ends the segment, the
per-context token limit cuts it) and gives every token a made-up but deterministic
log-probability, so mask and log-prob bookkeeping can be checked without a model.
"""

from __future__ import annotations

from collections.abc import Callable

from eapo.rollout.backend import Generation, SamplingParams


class ScriptedBackend:
    def __init__(self, script: Callable[[list[int], int], list[int]], eos_token_ids: tuple[int, ...]) -> None:
        self.script = script
        self.eos_token_ids = tuple(eos_token_ids)
        self.calls = 0

    def generate(self, contexts: list[list[int]], max_new_tokens: list[int], params: SamplingParams) -> list[Generation]:
        self.calls += 1
        stops = set(params.stop_token_ids) | set(self.eos_token_ids)
        out = []
        for ctx, limit in zip(contexts, max_new_tokens):
            ids = list(self.script(list(ctx), self.calls))[:limit]
            finish = "length"
            for i, tok in enumerate(ids):
                if tok in stops:
                    ids = ids[: i + 1]
                    finish = "eos" if tok in self.eos_token_ids else "stop"
                    break
            logprobs = [-0.01 * ((len(ctx) + i) % 97 + 1) for i in range(len(ids))]
            out.append(Generation(ids=ids, logprobs=logprobs, finish=finish))
        return out
