"""Expert dispatch of EAPO's rollout against TRL's built-in tool-calling loop, same workload.

Workload: B episodes each make one consultation with K queries; every expert / tool call
takes L seconds (an async sleep: a remote expert server). Generation is instant in both
arms, so the times are the dispatch alone.

- EAPO: `RolloutEngine.run` with a scripted policy (consult K queries, then answer) and an
  `ExpertPool` of 3 members: every call of the turn, across the batch, goes out at once.
- TRL 1.16: `GRPOTrainer._tool_call_loop` itself (the real function), called with a
  stand-in for the trainer that provides only what that function reads on the text path
  (tool dicts, TRL's background event loop, an instant `_generate_single_turn`, a fixed
  tool-suffix tokenisation, limits). Each sample's completion holds K `consult` tool calls.
  TRL gathers async tools within one sample, one sample after another; a sync tool is
  called one call after another (the second TRL row).

    .venv/bin/python benchmarks/dispatch_vs_trl_tools.py [--batch 32] [--k 3] [--latency 0.1] [--repeats 3]

Prints the median wall time of each arm over the repeats (min-max in brackets) and the
ratios TRL / EAPO.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from types import SimpleNamespace

from eapo.experts import ExpertPool
from eapo.models.tokenizer import build_tokenizer
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.types import ExpertReply, Problem


class SleepyExpert:
    def __init__(self, latency: float, name: str) -> None:
        self.latency, self.name = latency, name

    async def ask(self, request):
        await asyncio.sleep(self.latency)
        return ExpertReply(text="42")


def eapo_dispatch(batch: int, k: int, latency: float) -> float:
    tok = build_tokenizer()
    consult = "<consult>" + "".join(f"<query>q{j}</query>" for j in range(k)) + "</consult>"

    def script(ctx, call):
        return tok.encode(consult if call == 1 else "<answer>42</answer>", add_special_tokens=False)

    pool = ExpertPool([SleepyExpert(latency, f"e{i}") for i in range(3)], timeout_s=60)
    engine = RolloutEngine(ScriptedBackend(script, (tok.eos_token_id,)), tok,
                           RolloutConfig(system_prompt="", max_queries=k), pool=pool)
    problems = [Problem(f"p{i}", f"{i}+1", "42") for i in range(batch)]
    t0 = time.perf_counter()
    episodes = engine.run(problems, step=1, rhos=1.0, turn_budget=3)
    wall = time.perf_counter() - t0
    assert sum(len(ep.calls) for ep in episodes) == batch * k and all(ep.score == 1.0 for ep in episodes)
    return wall


def trl_tool_loop(batch: int, k: int, latency: float, *, use_async: bool) -> float:
    from trl import GRPOTrainer

    loop = asyncio.new_event_loop()  # TRL runs async tools on a background loop like this one
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    calls = {"n": 0}

    async def consult_async(query: str) -> str:
        calls["n"] += 1
        await asyncio.sleep(latency)
        return "42"

    def consult_sync(query: str) -> str:
        calls["n"] += 1
        time.sleep(latency)
        return "42"

    tools = {"consult": consult_async if use_async else consult_sync}
    trainer = SimpleNamespace(
        max_tool_calling_iterations=4, async_loop=loop, use_vllm=False, _is_vlm=False, max_completion_length=4096,
        model=SimpleNamespace(config=SimpleNamespace(max_position_embeddings=1 << 20)),
        _sync_tool_dicts=[{} if use_async else tools for _ in range(batch)],
        _async_tool_dicts=[tools if use_async else {} for _ in range(batch)],
        _get_tool_suffix_ids=lambda messages: [7] * (4 * len(messages)),
        _generate_single_turn=lambda ids, *a, **kw: ([[] for _ in ids], [[] for _ in ids]),  # instant, nothing new
        environment_factories=None, tools=[consult_async], processing_class=None,
    )
    calls_of = [{"type": "function", "function": {"name": "consult", "arguments": {"query": f"q{j}"}}} for j in range(k)]
    prompts = [[{"role": "user", "content": f"{i}+1"}] for i in range(batch)]
    completions = [[{"role": "assistant", "content": "", "tool_calls": list(calls_of)}] for _ in range(batch)]
    prompt_ids = [[1, 2, 3] for _ in range(batch)]
    completion_ids = [[4, 5] for _ in range(batch)]
    t0 = time.perf_counter()
    GRPOTrainer._tool_call_loop(trainer, prompts, prompt_ids, completion_ids, completions, None, None, {})
    wall = time.perf_counter() - t0
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    assert calls["n"] == batch * k
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    arms = {
        "EAPO ExpertPool (whole batch at once)": lambda: eapo_dispatch(a.batch, a.k, a.latency),
        "TRL _tool_call_loop, async tool": lambda: trl_tool_loop(a.batch, a.k, a.latency, use_async=True),
        "TRL _tool_call_loop, sync tool": lambda: trl_tool_loop(a.batch, a.k, a.latency, use_async=False),
    }
    times = {name: [fn() for _ in range(a.repeats)] for name, fn in arms.items()}
    print(f"{a.batch} episodes x {a.k} queries, {a.latency * 1000:.0f} ms per call, {a.repeats} repeats "
          f"(median [min-max] seconds)")
    for name, ts in times.items():
        print(f"  {name:40s} {statistics.median(ts):7.3f} [{min(ts):.3f}-{max(ts):.3f}]")
    base = statistics.median(times["EAPO ExpertPool (whole batch at once)"])
    for name in list(arms)[1:]:
        print(f"ratio {name} / EAPO: {statistics.median(times[name]) / base:.1f}x")


if __name__ == "__main__":
    main()
