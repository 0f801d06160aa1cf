"""Metric back-ends of a training run: metrics.jsonl always, TensorBoard, W&B, trackio.

A back-end is a `MetricSink`: `log(metrics, step)` and `close()`. `open_sinks` builds the
JSON Lines sink plus those named in `logging.backends`, from the `SINKS` registry; a new
back-end is one small class registered there.

Why not TRL/transformers' `report_to`: their integration callbacks pass every key through
`rewrite_logs`, which puts all training metrics under `train/` (`train/reward/mean`), so
the prefix groups (`reward/`, `expert/`, ...) collapse into one panel, and evaluation run
by our own callback would not reach them at all. Each back-end here is a few lines over
the library's public API and receives names that are already canonical
(`eapo.reporting.names`). `report_to` stays "none" and `rl.trl` may not set it.

Offline by default: W&B runs with `mode="offline"` (files under RUN/wandb, upload later
with `wandb sync`); trackio stores locally unless told about a Space; TensorBoard writes
event files to RUN/tensorboard.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eapo.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["SINKS", "JsonlSink", "MetricSink", "SinkContext", "open_sinks"]


class MetricSink(Protocol):
    def log(self, metrics: Mapping[str, Any], step: int) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SinkContext:
    """What a back-end may need to open its run."""

    run_dir: Path
    run_name: str
    project: str = "eapo"
    group: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    wandb_mode: str = "offline"


SINKS: Registry[Callable[[SinkContext], MetricSink]] = Registry("logging back-end")


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Finite numbers only: back-ends reject None, strings and NaN in different ways."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


class JsonlSink:
    """`metrics.jsonl`: one object per log event, `{"step", "wall_s", ...metrics}`, appended
    (a resumed run continues the same file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = time.time()

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        row = {"step": step, "wall_s": round(time.time() - self.start, 3), **metrics}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def close(self) -> None:
        pass


@SINKS.register("tensorboard")
class TensorBoardSink:
    def __init__(self, ctx: SinkContext) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self.writer = SummaryWriter(log_dir=str(ctx.run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(ctx.config, indent=2) + "\n```")

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        for k, v in _scalars(metrics).items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _stable_id(ctx: SinkContext) -> str:
    # One W&B/trackio run per run folder, the same after --resume.
    return hashlib.sha1(f"{ctx.run_dir.resolve()}|{ctx.run_name}".encode()).hexdigest()[:16]


@SINKS.register("wandb")
class WandbSink:
    def __init__(self, ctx: SinkContext) -> None:
        import wandb

        self.run = wandb.init(project=ctx.project, name=ctx.run_name, group=ctx.group, dir=str(ctx.run_dir),
                              mode=ctx.wandb_mode, config=ctx.config, id=_stable_id(ctx), resume="allow",
                              reinit="finish_previous")

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        self.run.log(_scalars(metrics), step=step)

    def close(self) -> None:
        self.run.finish()


@SINKS.register("trackio")
class TrackioSink:
    def __init__(self, ctx: SinkContext) -> None:
        import trackio

        self.trackio = trackio
        kwargs: dict[str, Any] = dict(project=ctx.project, name=ctx.run_name, group=ctx.group, config=ctx.config,
                                      resume="allow", auto_log_cpu=False, auto_log_gpu=False)
        accepted = inspect.signature(trackio.init).parameters  # older releases lack group and auto_log_*
        self.run = trackio.init(**{k: v for k, v in kwargs.items() if k in accepted})

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        self.trackio.log(_scalars(metrics), step=step)

    def close(self) -> None:
        self.trackio.finish()


def open_sinks(backends: tuple[str, ...], ctx: SinkContext) -> list[MetricSink]:
    """metrics.jsonl first, then each named back-end. If one fails to open, those already
    opened are closed and the error names the back-end."""
    sinks: list[MetricSink] = [JsonlSink(ctx.run_dir / "metrics.jsonl")]
    for name in backends:
        try:
            sinks.append(SINKS.get(name)(ctx))
        except Exception as e:
            for s in sinks:
                s.close()
            raise RuntimeError(f"logging back-end {name!r} could not start: {type(e).__name__}: {e}") from e
    return sinks
