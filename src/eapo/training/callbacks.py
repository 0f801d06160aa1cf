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


class Progress(TrainerCallback):
    """One progress bar with the figures a user watches (reward, accuracy, consult rate,
    rho, validation), instead of transformers' dump of every metric. On a terminal it is a
    live bar; elsewhere (CI logs) it is silent and a short log line is written per log event."""

    WATCH = {"reward": "reward", "reward/accuracy": "acc", "expert/consult_rate": "consult",
             "expert/acceptance_rate": "accept", "schedule/rho_effective": "rho", "frac_reward_zero_std": "zero-var"}

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None

    def on_train_begin(self, args, state, control, **kw):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.label, disable=None,
                            dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kw):
        if not state.is_world_process_zero or not logs:
            return
        shown = {short: logs[key] for key, short in self.WATCH.items() if key in logs}
        if not shown:
            return
        text = " ".join(f"{k}={v:.3g}" for k, v in shown.items())
        if self.bar is not None and not self.bar.disable:
            self.bar.set_postfix_str(text)
        else:
            log.info("%s step %d/%d %s", self.label, state.global_step, state.max_steps, text)

    def on_train_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
