"""The expert pool of `eapo eval --experts` (the workflow baseline, EAPO.md §6), from YAML.

The baseline asks what a policy reaches when it may consult experts while it answers, so
it is evaluated with the consult action open and every reply accepted (rho = 1). Its pool
is built from the `experts:` section of a YAML file, in the format of a training run's
configuration (`eapo.training.config.ExpertsConfig`), by the same function a training run
uses (`eapo.training.run.build_pool`), so `eapo eval --experts runs/x/config.yaml` consults
exactly the experts the run trained with. The other sections of the file are ignored.

Which oracle answers: on the built-in task (`--benchmark chain`) the task's own oracle,
which answers the sub-questions the policy asks; on a file benchmark the oracle replies
with the problem's gold answer (for code, the canonical body), whatever the question.

Departure from the paper's table: there the workflow is a fixed pipeline (always consult K
experts, then answer). Here the policy decides whether and what to ask, as it does in
training; a policy that never asks gets no help.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from eapo.config import ConfigError, from_dict, read_yaml
from eapo.evaluation.benchmarks import BenchmarkSpec, builtin_task
from eapo.experts.oracle import gold_answer
from eapo.training.config import ExpertsConfig
from eapo.types import ExpertRequest

log = logging.getLogger(__name__)


def load_experts_config(path: str | Path) -> ExpertsConfig:
    """The `experts:` section of a YAML file (a training config, or a file with only it)."""
    data = read_yaml(path)
    if "experts" not in data or data["experts"] is None:
        raise ConfigError(f"{path}: no `experts:` section (expected the format of a training config's "
                          f"experts section, e.g. `experts: {{kind: oracle}}`); keys found: {sorted(data)}")
    if not isinstance(data["experts"], dict):
        raise ConfigError(f"{path}: `experts:` must be a mapping, got {type(data['experts']).__name__}")
    ignored = sorted(set(data) - {"experts"})
    if ignored:
        log.info("%s: using only its experts section (ignoring %s)", path, ", ".join(ignored))
    try:
        return from_dict(ExpertsConfig, data["experts"], "experts")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


class _GoldOracle:
    """A task-shaped object for `build_pool` whose oracle replies with the gold answer."""

    def oracle_answer(self, request: ExpertRequest) -> str:
        return gold_answer(request)


def build_workflow_pool(experts: ExpertsConfig, spec: BenchmarkSpec, *, policy: str, seed: int) -> Any:
    """The expert pool for an evaluation of `policy` on `spec`'s problems.

    `policy` is also the frozen copy a "homogeneous" pool consults."""
    from eapo.training.config import TrainConfig
    from eapo.training.run import build_pool

    task = builtin_task(spec.builtin) if spec.builtin is not None else _GoldOracle()
    # The run's arm must be "eapo" (build_pool returns no pool for self-exploratory RL);
    # every section but `experts` and `seed` keeps its default and is unused.
    pool = build_pool(TrainConfig(seed=seed, experts=experts), task, policy)
    if pool is None:  # pragma: no cover - guarded by the arm above
        raise ValueError("the experts configuration gave no expert pool")
    return pool
