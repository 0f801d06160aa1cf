"""The tiny policy's rollout with one torch thread against two, in fresh processes.

Why: the tiny end-to-end run (examples/paper/tiny_cpu.yaml, tests/e2e/test_paper_tiny.py)
sets OMP_NUM_THREADS=1. A 0.43 M-parameter model has too little work per operation for a
second thread to pay for its synchronisation, and on a machine whose cores are busy with
other jobs a waiting thread spins or is descheduled. This script measures it: the same 32
episodes (8 DAPO-Math-17k problems x 4, system prompt on, K = 3 with the in-process oracle,
turn budget 10, 48 tokens per turn, seed 0) in a subprocess with each thread count,
alternating, `--repeats` times each; prints wall and CPU seconds and the ratio of medians.
The episodes are identical under both counts (checked: same policy-token total).

    .venv/bin/python benchmarks/tiny_rollout_threads.py [--repeats 3]

Needs the benchmark data (../shared/data or $EAPO_DATA_DIR). Results depend on how busy
the machine is: say so when quoting them (docs/RESULTS.md, "The paper's setting end to end, tiny").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
from eapo.evaluation.benchmarks import load_benchmark
from eapo.experts import ExpertPool, OracleExpert
from eapo.models.build import ensure_tiny_models, load_policy
from eapo.protocol.tags import Tags
from eapo.rollout.config import RolloutConfig
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.hf_backend import HFBackend

model, tok = load_policy(str(ensure_tiny_models()["policy"]))
problems = load_benchmark("dapo_math", limit=8)
cfg = RolloutConfig(tags=Tags(allow_boxed=True), system_prompt=None, tokens_per_turn=48, max_policy_tokens=256,
                    max_completion_tokens=512)
engine = RolloutEngine(HFBackend(model, tok), tok, cfg, pool=ExpertPool([OracleExpert()] * 3), scorer="math", seed=0)
u0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
episodes = engine.run([p for p in problems for _ in range(4)], step=1, rhos=1.0, turn_budget=10)
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime - u0,
                  "policy_tokens": sum(e.policy_tokens for e in episodes)}))
"""


def run(threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    got: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for threads in (1, 2):  # alternating, so a change in the machine's load hits both
            got[threads].append(run(threads))
    tokens = {r["policy_tokens"] for rows in got.values() for r in rows}
    assert len(tokens) == 1, f"the thread count changed the episodes: {tokens}"
    med = {t: {k: statistics.median(r[k] for r in rows) for k in ("wall_s", "cpu_s")} for t, rows in got.items()}
    for t, rows in got.items():
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in rows)
        print(f"{t} thread(s): wall s [{walls}] median {med[t]['wall_s']:.2f}, CPU s median {med[t]['cpu_s']:.2f}")
    print(f"32 episodes, {tokens.pop()} policy tokens each run")
    print(f"ratio 2 threads / 1 thread: wall {med[2]['wall_s'] / med[1]['wall_s']:.2f}x, "
          f"CPU {med[2]['cpu_s'] / med[1]['cpu_s']:.2f}x")


if __name__ == "__main__":
    main()
