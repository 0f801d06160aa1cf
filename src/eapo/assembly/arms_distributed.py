"""The arms of `eapo train` (warm start, base row, self-RL, EAPO) when several processes run
them together under `accelerate launch`.

The single-process flow (`eapo.assembly.arms.run_arms`) is kept as it is; this wraps
the same steps so that work done once is done once: the main process prepares the policy
(warm start, cached) and evaluates the base row first, the others then find both in the
caches; every process trains each arm together (TRL data-parallel); only the main process
writes the comparison's files. Arms already finished are reused and an arm with a complete
checkpoint resumes, as in the single-process flow.

Moved here from `eapo.distributed.arms` (issue 18: it trains arms, so it sits above
training, not in the distributed layer below it); the old path forwards here for one release.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from eapo.assembly.arms import evaluate_base, prepare_policy, run_arm
from eapo.schema import TrainConfig

log = logging.getLogger(__name__)


def process_state() -> Any:
    """accelerate's process state, initialised for the device the trainer will use (CPU
    where there is no GPU, so the process group is gloo: the trainer's `use_cpu` matches)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def run_arms_distributed(cfg: TrainConfig, out: Path, *, arms: tuple[str, ...] = ("self_rl", "eapo"),
                         model: str | None = None, cache_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    from eapo.typed_yaml import dump_yaml

    state = process_state()
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(dump_yaml(cfg))
    with state.main_process_first():  # the main process fills the caches; the others read them
        policy = prepare_policy(cfg, model, cache_dir)
        base = evaluate_base(cfg, policy, out)
    rows: dict[str, dict[str, Any]] = {"base": {"test": base, "wall_s": 0.0}}
    for arm in arms:
        rows[arm] = run_arm(cfg, out, arm, policy, barrier=state.wait_for_everyone)
    state.wait_for_everyone()
    if state.is_main_process:
        (out / "summary.json").write_text(json.dumps({"policy": policy, "rows": rows,
                                                      "num_processes": state.num_processes}, indent=2))
    return rows
