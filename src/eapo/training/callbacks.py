"""Trainer callbacks: the run's metrics, our checkpoint state, periodic evaluation, progress.

Each is a small `transformers.TrainerCallback`; only the main process writes files.
`MetricsLogger` renames TRL's metrics into the prefix scheme of `eapo.reporting.names` and
hands every log event to the run's back-ends (`eapo.training.tracking`); evaluation that
our own callback runs reaches the same back-ends through `MetricsLogger.publish`.

`PoolMetrics` puts the expert pool's accounting into every training log row, under
`expert/pool/` (the `expert/` metric group): calls, failures by cause, retries, latency
percentiles, tokens and estimated cost since the previous row, and `expert/pool/total_*`
running totals for the run so far. It must be added to the trainer before the callback
that writes the metrics, because it adds to the row that callback writes."""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from eapo.experts import ExpertPool, pool_metrics
from eapo.progress import ProgressBar
from eapo.reporting.names import canonical_row
from eapo.training.checkpoints import write_state
from eapo.training.tracking import MetricSink

log = logging.getLogger(__name__)

METRICS_PREFIX = "expert/pool"
_TOTALS = ("calls", "failures", "retries", "prompt_tokens", "completion_tokens", "cost_usd", "cache_hits")


class MetricsLogger(TrainerCallback):
    """Every log event, with canonical names, to every sink (metrics.jsonl first).

    Adds `time/step_wall_s`: the mean wall time of the steps since the previous log
    event, from step begin to step end, so it includes the optimiser step that TRL's
    `step_time` (`time/step_s`) leaves out. Sinks are closed by their owner (the run),
    after the final evaluation has been published too."""

    def __init__(self, sinks: Sequence[MetricSink]) -> None:
        self.sinks = list(sinks)
        self._t_step = 0.0
        self._step_walls: list[float] = []

    def on_step_begin(self, args, state, control, **kw):
        self._t_step = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self._step_walls.append(time.perf_counter() - self._t_step)

    def on_log(self, args, state, control, logs=None, **kw):
        if not state.is_world_process_zero or not logs:
            return
        row = canonical_row(logs)
        if self._step_walls and "time/step_s" in row:  # a training row, not the closing summary
            row["time/step_wall_s"] = statistics.fmean(self._step_walls)
            self._step_walls.clear()
        self.publish(row, state.global_step)

    def publish(self, metrics: Mapping[str, Any], step: int) -> None:
        for sink in self.sinks:
            sink.log(metrics, step)


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

    def __init__(self, every: int, run_eval: Callable[[int], dict[str, float]], out: Path,
                 publish: Callable[[Mapping[str, Any], int], None] | None = None) -> None:
        self.every, self.run_eval, self.out, self.publish = every, run_eval, out, publish

    def on_step_end(self, args, state, control, **kw):
        step = state.global_step
        if self.every and (step % self.every == 0 or step == state.max_steps):
            metrics = self.run_eval(step)
            if state.is_world_process_zero:
                with self.out.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": step, **metrics}) + "\n")
                if self.publish is not None:
                    self.publish(metrics, step)
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
    rho, zero-variance groups) instead of transformers' dump of every metric: a live bar
    with rate and ETA on a terminal, periodic log lines elsewhere (`eapo.progress`)."""

    WATCH = {"reward/mean": "reward", "reward/accuracy": "acc", "expert/consult_rate": "consult",
             "expert/acceptance_rate": "accept", "schedule/rho_effective": "rho", "reward/frac_zero_std": "zero-var"}

    def __init__(self, label: str, *, live: bool | None = None, log_every_s: float = 30.0,
                 watch: dict[str, str] | None = None) -> None:
        self.label, self.live, self.log_every_s = label, live, log_every_s
        self.watch = self.WATCH if watch is None else watch
        self.bar: ProgressBar | None = None

    def on_train_begin(self, args, state, control, **kw):
        if state.is_world_process_zero:
            self.bar = ProgressBar(state.max_steps, self.label, initial=state.global_step, live=self.live,
                                   log_every_s=self.log_every_s).start()

    def on_step_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.update(state.global_step)

    def on_log(self, args, state, control, logs=None, **kw):
        if self.bar is None or not logs:
            return
        row = canonical_row(logs)
        shown = {short: row[key] for key, short in self.watch.items() if isinstance(row.get(key), (int, float))}
        if shown:
            self.bar.note(" ".join(f"{k}={v:.3g}" for k, v in shown.items()))

    def on_train_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class PoolMetrics(TrainerCallback):
    """Adds the pool's accounting to each log row (see the module docstring)."""

    def __init__(self, pool: ExpertPool, prefix: str = METRICS_PREFIX) -> None:
        self.pool = pool
        self.prefix = prefix
        self.totals: dict[str, float] = defaultdict(float)

    def on_log(self, args, state, control, logs=None, **kw):
        if logs is None:
            return
        stats = self.pool.snapshot_and_reset()
        if not any(s.calls for s in stats) and "train_runtime" in logs:
            return  # the closing summary row: nothing new to account for
        metrics = pool_metrics(stats, prefix=self.prefix)
        for key in _TOTALS:
            self.totals[key] += metrics.get(f"{self.prefix}/{key}", 0.0)
            metrics[f"{self.prefix}/total_{key}"] = self.totals[key]
        logs.update(metrics)
