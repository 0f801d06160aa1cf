"""The expert pool of `eapo eval --experts` (the workflow baseline, EAPO.md §6), from YAML.

The baseline asks what a policy reaches when it may consult experts while it answers, so
it is evaluated with the consult action open and every reply accepted (rho = 1). Its pool
is built from the `experts:` section of a YAML file, in the format of a training run's
configuration (`eapo.schema.ExpertsConfig`, read here by `load_experts_config`),
by the same function a training run uses (`eapo.assembly.pool.build_workflow_pool`, above
this layer: `eapo eval` builds the pool and passes it to `evaluate_benchmark`), so
`eapo eval --experts runs/x/config.yaml` consults exactly the experts the run trained
with. The other sections of the file are ignored.

Departure from the paper's table: there the workflow is a fixed pipeline (always consult K
experts, then answer). Here the policy decides whether and what to ask, as it does in
training; a policy that never asks gets no help.
"""

from __future__ import annotations

import logging
from pathlib import Path

from eapo.config import ConfigError, from_dict, read_yaml
from eapo.moved import forward
from eapo.schema import ExpertsConfig

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


# `build_workflow_pool` moved to the assembly layer (issue 18); forwarded for one release.
MOVED = {"build_workflow_pool": "eapo.assembly.pool"}
__getattr__ = forward(__name__, MOVED)
