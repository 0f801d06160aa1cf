"""One rollout turn in which 16 episodes consult an expert over HTTP that takes 0.2 s per reply.

The expert is `eapo serve-expert`'s app around the built-in oracle with `delay_s=0.2`,
served by uvicorn on loopback, in a thread of this process or (`--subprocess`) as the
`eapo serve-expert` command in its own process; the client is `OpenAIExpert`
(the official `openai` async client) inside an `ExpertPool`, driven by the rollout engine
with a scripted policy, exactly as in training. Printed, for `--repeats` rounds:

- the engine's expert phase for the turn (16 consults) in units of one reply's latency
  (target: about 1, i.e. the turn waits for one latency, not sixteen);
- the same 16 calls made one after another through the same client (the baseline);
- the ratio sequential / concurrent (target: about 16).

    .venv/bin/python benchmarks/network_expert_concurrency.py [--repeats 5] [--n 16] [--delay 0.2] [--subprocess]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from eapo.experts import ExpertPool, OpenAIExpert
from eapo.models.tokenizer import build_tokenizer
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.serving import OracleBackend, ServerThread, create_app
from eapo.types import ExpertRequest, Problem


@contextlib.contextmanager
def server(delay: float, in_subprocess: bool) -> Iterator[str]:
    """The base URL of an oracle server taking `delay` seconds per reply."""
    if not in_subprocess:
        with ServerThread(create_app(OracleBackend(delay_s=delay), served_model="oracle")) as srv:
            yield srv.base_url
        return
    eapo = Path(sys.executable).with_name("eapo")
    proc = subprocess.Popen([str(eapo), "serve-expert", "--model", "oracle", "--port", "0", "--delay-s", str(delay)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        m = re.search(r"(http://\S+/v1)", line)
        if not m:
            raise RuntimeError(f"eapo serve-expert did not start: {line!r}")
        yield m.group(1)
    finally:
        proc.kill()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="episodes consulting in the turn")
    ap.add_argument("--delay", type=float, default=0.2, help="server seconds per reply")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--subprocess", action="store_true", help="run the server as `eapo serve-expert` in its own process")
    args = ap.parse_args()

    tok = build_tokenizer()

    def script(ctx, call):
        text = tok.decode(ctx)
        if "<expert" not in text:
            return tok.encode("<consult><query>47+38</query></consult>", add_special_tokens=False)
        return tok.encode("<answer>85</answer>", add_special_tokens=False)

    problems = [Problem(f"p{i}", f"47+38+{i}", str(85 + i)) for i in range(args.n)]
    with server(args.delay, args.subprocess) as base_url:
        expert = OpenAIExpert(base_url, "oracle", timeout_s=30, max_concurrency=64)
        pool = ExpertPool([expert], timeout_s=60)
        pool.ask_many_sync([ExpertRequest(problem="1+1", query="1+1")], [0])  # warm up: imports, connection
        concurrent, sequential = [], []
        for r in range(args.repeats):
            engine = RolloutEngine(ScriptedBackend(script, (tok.eos_token_id,)), tok, RolloutConfig(system_prompt=""),
                                   pool=pool)
            episodes = engine.run(problems, step=1, rhos=1.0, turn_budget=3, uids=[f"r{r}-{p.id}" for p in problems])
            ok = sum(c.accepted and c.reply == "85" for ep in episodes for c in ep.calls)
            assert engine.timings.expert_calls == args.n and ok == args.n, (engine.timings.expert_calls, ok)
            concurrent.append(engine.timings.expert_s)
            t0 = time.perf_counter()
            for i in range(args.n):
                [(_, reply)] = pool.ask_many_sync([ExpertRequest(problem="p", query="47+38", key=f"seq{r}-{i}")], [0])
                assert reply.ok
            sequential.append(time.perf_counter() - t0)
        expert.close()

    def show(xs: list[float]) -> str:
        sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
        return f"{statistics.fmean(xs):.3f} s ± {sd:.3f} (min {min(xs):.3f}, max {max(xs):.3f})"

    ratios = [s / c for s, c in zip(sequential, concurrent)]
    where = "its own process" if args.subprocess else "a thread of this process"
    print(f"{args.n} consults in one turn, server ({where}) {args.delay * 1000:.0f} ms per reply, {args.repeats} repeats")
    print(f"engine expert phase (concurrent): {show(concurrent)}")
    print(f"  = {statistics.fmean(concurrent) / args.delay:.2f} x one reply's latency (target ~1, not {args.n})")
    print(f"same calls one after another:     {show(sequential)}")
    print(f"ratio sequential / concurrent:    {statistics.fmean(ratios):.1f}x (min {min(ratios):.1f}, max {max(ratios):.1f})")


if __name__ == "__main__":
    main()
