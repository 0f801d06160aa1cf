"""Time to score all 164 HumanEval canonical solutions in the sandbox, one program at a
time (the baseline) and `--workers` at a time, through `eapo score`'s library path
(`eapo.evaluation.score.score_predictions`). Also checks that every one passes.

Run (2 shared cores: keep it niced):
    nice .venv/bin/python benchmarks/humaneval_sandbox.py --workers 4 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from eapo.evaluation.benchmarks import load_benchmark
from eapo.evaluation.score import score_predictions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    problems = load_benchmark("humaneval")
    preds = {p.id: [p.meta["canonical_solution"]] for p in problems}
    times: dict[int, list[float]] = {1: [], args.workers: []}
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        for workers in times:
            t0 = time.perf_counter()
            report = score_predictions(problems, preds, "code", workers=workers)
            times[workers].append(time.perf_counter() - t0)
            failed = [i.id for i in report.items if i.score != 1.0]
            assert not failed, f"canonical solutions failed: {failed}"
    print(f"{len(problems)} HumanEval canonical solutions, all passed; {os.cpu_count()} CPUs; "
          f"{args.repeats} repeats (median, min-max)")
    for workers, ts in times.items():
        print(f"workers={workers}: {statistics.median(ts):.2f} s ({min(ts):.2f}-{max(ts):.2f}), "
              f"{1000 * statistics.median(ts) / len(problems):.0f} ms/program")
    base, fast = statistics.median(times[1]), statistics.median(times[args.workers])
    print(f"ratio workers=1 / workers={args.workers}: {base / fast:.2f}")


if __name__ == "__main__":
    main()
