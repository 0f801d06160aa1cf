"""Every key of a run, in one place: the frozen config dataclasses with a doc under each
field, the choices they accept, and the checks behind their error messages.

Read `run.TrainConfig` top to bottom to learn a run's sections, in the order
`examples/default.yaml` writes them (that file is generated from here:
`python -m eapo.schema.example > examples/default.yaml`):

- `task`: the problems (`task.py`);
- `model`, `warmstart`: the policy and its supervised warm start (`policy.py`);
- `experts` and its `members`: the expert pool (`experts.py`);
- `rollout`: one multi-turn episode, with the protocol's `Tags` (`rollout.py`);
- `acceptance` (+ `adaptive`), `turn_budget`, `penalty`: the schedules (`schedules.py`);
- `reward` (`reward.py`); `rl` (`rl.py`); `eval`, `logging` (`evaluation.py`).

What this layer does not do: compute anything with a config (the schedules are
`eapo.schedules`, the reward `eapo.rewards`, ...), or read YAML (`eapo.typed_yaml`). It
imports only the shared vocabulary below it (`eapo.protocol` for `Tags`), so any layer
can read a config without importing the code that uses it.
"""

from eapo.protocol.tags import Tags
from eapo.schema.checks import check_count, check_int, check_lengths, check_one_of, check_real, check_unit
from eapo.schema.evaluation import EVAL_LOCKS, LOGGING_BACKENDS, WANDB_MODES, EvalConfig, LoggingConfig
from eapo.schema.experts import EXPERT_KINDS, MEMBER_TYPES, ROUTING_NAMES, ExpertMemberConfig, ExpertsConfig
from eapo.schema.policy import ModelConfig, WarmStartConfig
from eapo.schema.reward import RewardConfig
from eapo.schema.rl import ARMS, SCALE_REWARDS, TRL_OWNED_KEYS, RLConfig, check_trl_overrides
from eapo.schema.rollout import BARE_REFUSALS, CONSULT_MODES, CONSULT_STYLES, RolloutConfig
from eapo.schema.run import TrainConfig
from eapo.schema.schedules import (
    ACCEPTANCE_KINDS,
    APPLY_TO,
    BUDGET_KINDS,
    COMBINE_RULES,
    GRANULARITIES,
    PENALTY_KINDS,
    AcceptanceConfig,
    AdaptiveConfig,
    PenaltyConfig,
    TurnBudgetConfig,
)
from eapo.schema.task import ORACLES, SCORER_NAMES, TASK_NAMES, TaskConfig

__all__ = [
    "ACCEPTANCE_KINDS",
    "APPLY_TO",
    "ARMS",
    "BARE_REFUSALS",
    "BUDGET_KINDS",
    "COMBINE_RULES",
    "CONSULT_MODES",
    "CONSULT_STYLES",
    "EVAL_LOCKS",
    "EXPERT_KINDS",
    "GRANULARITIES",
    "LOGGING_BACKENDS",
    "MEMBER_TYPES",
    "ORACLES",
    "PENALTY_KINDS",
    "ROUTING_NAMES",
    "SCALE_REWARDS",
    "SCORER_NAMES",
    "TASK_NAMES",
    "TRL_OWNED_KEYS",
    "WANDB_MODES",
    "AcceptanceConfig",
    "AdaptiveConfig",
    "EvalConfig",
    "ExpertMemberConfig",
    "ExpertsConfig",
    "LoggingConfig",
    "ModelConfig",
    "PenaltyConfig",
    "RLConfig",
    "RewardConfig",
    "RolloutConfig",
    "Tags",
    "TaskConfig",
    "TrainConfig",
    "TurnBudgetConfig",
    "WarmStartConfig",
    "check_count",
    "check_int",
    "check_lengths",
    "check_one_of",
    "check_real",
    "check_trl_overrides",
    "check_unit",
]
