"""Continue a cached warm start with other demonstration settings (a lever of issue 4).

Used in docs/notebook/2026-11-27-issue4-levers.md (and in stops 12-13) to build a starting
policy that consults more often: the default warm start continued for 300 steps with
consult_prob 0.5. The result is cached like any warm start (keyed by source, task and
settings) and its path is printed.

    .venv/bin/python benchmarks/continue_warmstart.py --source ~/.cache/eapo/warmstarts/warmstart-<key> \\
        --steps 300 --lr 1e-3 --consult-prob 0.5 --refusal-prob 0.3 --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, type=Path)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--consult-prob", type=float, default=0.5)
    ap.add_argument("--refusal-prob", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--query", choices=("step", "prefix"), default="step",
                    help="what a demonstrated consultation asks (WarmStartConfig.query)")
    ap.add_argument("--consult-style", choices=("block", "bare"), default="block",
                    help="how demonstrated consultations look (WarmStartConfig.consult_style)")
    ap.add_argument("--bare-refusal", choices=("block", "silent"), default="block",
                    help="what a refused bare consultation shows (WarmStartConfig.bare_refusal)")
    ap.add_argument("--slip-prob", type=float, default=0.0,
                    help="share of demonstrations whose chain a reply repairs (WarmStartConfig.slip_prob)")
    a = ap.parse_args()

    from eapo.models.build import default_cache_dir
    from eapo.training.config import TrainConfig, WarmStartConfig
    from eapo.assembly.run import build_task
    from eapo.training.warmstart import warm_start

    cfg = WarmStartConfig(steps=a.steps, learning_rate=a.lr, consult_prob=a.consult_prob,
                          refusal_prob=a.refusal_prob, seed=a.seed, query=a.query, slip_prob=a.slip_prob,
                          consult_style=a.consult_style, bare_refusal=a.bare_refusal)
    print(warm_start(a.source, default_cache_dir() / "warmstarts", build_task(TrainConfig()), cfg))


if __name__ == "__main__":
    main()
