"""Expert phase of one rollout turn: 16 episodes consult a fake expert that takes 0.2 s.

Prints the expert-phase wall time of the engine (all calls of the turn run concurrently)
against the same calls made one after another, in the same process. Target: a ratio near
16, i.e. the turn's expert phase takes about one call's latency, not the sum.

    .venv/bin/python benchmarks/rollout_expert_concurrency.py
"""

from __future__ import annotations

import asyncio
import time

from eapo.experts import ExpertPool, FakeExpert
from eapo.models.tokenizer import build_tokenizer
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.types import ExpertRequest, Problem

N, DELAY = 16, 0.2


def main() -> None:
    tok = build_tokenizer()
    turns = ["<consult><query>q</query></consult>", "<answer>1</answer>"]

    def script(ctx, call):
        return tok.encode(turns[min(call, 2) - 1], add_special_tokens=False)

    expert = FakeExpert(delay_s=DELAY)
    engine = RolloutEngine(ScriptedBackend(script, (tok.eos_token_id,)), tok, RolloutConfig(system_prompt=""),
                           pool=ExpertPool([expert]))
    problems = [Problem(f"p{i}", f"{i}+1", str(i + 1)) for i in range(N)]
    engine.run(problems, step=1, rhos=1.0, turn_budget=3)
    concurrent = engine.timings.expert_s

    async def one_by_one() -> None:
        for i in range(N):
            await expert.ask(ExpertRequest(problem="", query="q", key=str(i)))

    t0 = time.perf_counter()
    asyncio.run(one_by_one())
    sequential = time.perf_counter() - t0
    print(f"expert calls: {engine.timings.expert_calls} x {DELAY:.1f} s")
    print(f"engine expert phase (concurrent): {concurrent:.3f} s")
    print(f"same calls one after another:     {sequential:.3f} s")
    print(f"ratio sequential / concurrent:    {sequential / concurrent:.1f}x")


if __name__ == "__main__":
    main()
