"""A run from its configuration: its task, what the task implies, its policy, the run.

`build_task` reads a `task:` section into problems (the built-in chain task, or a
dataset's reproducible splits read by `eapo.evaluation.benchmarks`); `with_task_settings`
and `with_policy_prompt` settle the settings that follow from the task and the policy;
`given_policy` says which policy the run starts from. `train_from_config` does all of it
and hands the result to `eapo.training.run.train_run`, which trains what it is given.

Moved here from `eapo.training.run` (issue 18), whose old names forward here for one
release.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eapo.assembly.pool import build_pool
from eapo.evaluation import benchmarks
from eapo.tasks.arithmetic import ChainTask
from eapo.tasks.dataset import DatasetTask
from eapo.schema import TrainConfig
from eapo.training.run import RunResult, train_run

__all__ = ["build_task", "given_policy", "train_from_config", "with_policy_prompt", "with_task_settings"]


def build_task(cfg: TrainConfig) -> ChainTask | DatasetTask:
    """The run's problems: the built-in chain task, or a dataset's reproducible splits
    (`eapo.tasks.dataset`; reads the data files, so errors about them surface here)."""
    t = cfg.task
    if t.name == "dataset":
        assert t.data is not None  # the config checked it
        return DatasetTask.build(t.data, loader=benchmarks, fields=t.fields, scorer=t.scorer, val_data=t.val_data,
                                 test_data=t.test_data, train_size=t.train_size, val_size=t.val_size,
                                 test_size=t.test_size, seed=t.seed)
    return ChainTask.from_config(t)


def with_task_settings(cfg: TrainConfig, task: Any) -> TrainConfig:
    """`cfg` with what its task implies: a math task (prompt family "math_boxed", or scored
    by "math") takes a final `\\boxed{...}` in the policy's own text as its answer, as
    `eapo eval` does for the same sets, so training and evaluation read answers alike.
    The chain task's step and tutor oracles get the policy's transcript. Idempotent."""
    if getattr(task, "oracle", "literal") != "literal" and not cfg.rollout.expert_sees_transcript:
        # the step and tutor oracles find the step the policy is at in its transcript
        cfg = dataclasses.replace(cfg, rollout=dataclasses.replace(cfg.rollout, expert_sees_transcript=True))
    math = getattr(task, "template_family", None) == "math_boxed" or getattr(task, "scorer", None) == "math"
    if not math or cfg.rollout.tags.allow_boxed:
        return cfg
    tags = dataclasses.replace(cfg.rollout.tags, allow_boxed=True)
    return dataclasses.replace(cfg, rollout=dataclasses.replace(cfg.rollout, tags=tags))


def given_policy(cfg: TrainConfig, model: str | None) -> str | None:
    """The policy named by `--model`, else by `model.policy`; None: the tiny built-in one.

    The tiny policy's warm start teaches the chain task only (`eapo.training.warmstart`),
    so a dataset task with the tiny policy is refused unless `warmstart.steps` is 0, which
    trains the untrained tiny policy: plumbing checks (tests, the walkthrough), not learning."""
    chosen = model or cfg.model.policy
    if chosen is None and cfg.task.name != "chain" and cfg.warmstart.steps > 0:
        raise ValueError(
            f"task {cfg.task.name!r} ({cfg.task.data}) with the tiny built-in policy: its warm start teaches the "
            "chain task only. Give a real policy (--model PATH_OR_HUB_ID, or model.policy), or set "
            "warmstart.steps=0 to train the untrained tiny policy (a plumbing check, not learning).")
    return chosen


def with_policy_prompt(cfg: TrainConfig, model: str | None) -> TrainConfig:
    """`cfg` with `rollout.system_prompt` resolved by `model.system_prompt` (see there): a
    given policy (`model`, or `model.policy`) gets the protocol's system text unless turned
    off, the tiny built-in one none unless turned on. Idempotent; a custom text is kept."""
    on = cfg.model.system_prompt
    text = cfg.rollout.system_prompt
    if on is False:
        text = ""
    elif text == "" and (on or (model or cfg.model.policy) is not None):
        text = None  # None: the protocol's default text (RolloutConfig)
    if text == cfg.rollout.system_prompt:
        return cfg
    return dataclasses.replace(cfg, rollout=dataclasses.replace(cfg.rollout, system_prompt=text))


def train_from_config(
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    policy_path: str,
    resume: bool = False,
    backend_factory: Callable[[Any, Any], Any] | None = None,
    stop_at_step: int | None = None,
) -> RunResult:
    """`eapo.training.run.train_run` of what `cfg` describes: its task, the settings the
    task implies, and its expert pool (none for self-exploratory RL; a "homogeneous" pool
    consults a frozen copy of `policy_path`). The arguments are `train_run`'s."""
    task = build_task(cfg)
    cfg = with_task_settings(cfg, task)
    return train_run(cfg, run_dir, task=task, pool=build_pool(cfg, task, policy_path), policy_path=policy_path,
                     resume=resume, backend_factory=backend_factory, stop_at_step=stop_at_step)
