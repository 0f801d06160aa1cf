"""Trainer callbacks: the run's metrics file, our checkpoint state, periodic evaluation.

Each is a small `transformers.TrainerCallback`; only the main process writes files."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from eapo.training.checkpoints import write_state

log = logging.getLogger(__name__)


class MetricsFile(TrainerCallback):
    """Appends every log event to `metrics.jsonl` with the step and wall time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = time.time()
        self.last_update_s = 0.0
        self._t_step = 0.0

    def on_step_begin(self, args, state, control, **kw):
        self._t_step = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.last_update_s = time.perf_counter() - self._t_step

    def on_log(self, args, state, control, logs=None, **kw):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "wall_s": round(time.time() - self.start, 3), **logs}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


class EAPOState(TrainerCallback):
    """Saves our state next to TRL's in every checkpoint, then marks it complete."""

    def __init__(self, get_state: Callable[[], dict[str, Any]]) -> None:
        self.get_state = get_state

    def on_save(self, args, state, control, **kw):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            write_state(folder, {"global_step": state.global_step, **self.get_state()})


class PeriodicEval(TrainerCallback):
    """Expert-free evaluation on the validation split every `every` steps (and at the end)."""

    def __init__(self, every: int, run_eval: Callable[[int], dict[str, float]], out: Path) -> None:
        self.every, self.run_eval, self.out = every, run_eval, out

    def on_step_end(self, args, state, control, **kw):
        step = state.global_step
        if self.every and (step % self.every == 0 or step == state.max_steps):
            metrics = self.run_eval(step)
            if state.is_world_process_zero:
                with self.out.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": step, **metrics}) + "\n")
                log.info("step %d validation: %s", step, {k: round(v, 4) for k, v in metrics.items()})


class StopAt(TrainerCallback):
    """Ends the session at a step, checkpointing first: an interruption on purpose."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= self.step:
            control.should_save = True
            control.should_training_stop = True
