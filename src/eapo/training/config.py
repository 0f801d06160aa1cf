"""Re-export, kept for one release: a run's config (`TrainConfig` and its sections) is
`eapo.schema` now, where every key is defined once with its doc."""

from eapo.schema.evaluation import EVAL_LOCKS, LOGGING_BACKENDS, WANDB_MODES, EvalConfig, LoggingConfig  # re-export
from eapo.schema.experts import EXPERT_KINDS, MEMBER_TYPES, ExpertMemberConfig, ExpertsConfig  # re-export
from eapo.schema.policy import ModelConfig, WarmStartConfig  # re-export
from eapo.schema.rl import ARMS, SCALE_REWARDS, TRL_OWNED_KEYS, RLConfig, check_trl_overrides  # re-export
from eapo.schema.run import TrainConfig  # re-export
from eapo.schema.task import TASK_NAMES, TaskConfig  # re-export

__all__ = [
    "ARMS",
    "EVAL_LOCKS",
    "EXPERT_KINDS",
    "SCALE_REWARDS",
    "TASK_NAMES",
    "TRL_OWNED_KEYS",
    "EvalConfig",
    "ExpertMemberConfig",
    "ExpertsConfig",
    "MEMBER_TYPES",
    "LOGGING_BACKENDS",
    "LoggingConfig",
    "ModelConfig",
    "RLConfig",
    "TaskConfig",
    "TrainConfig",
    "WANDB_MODES",
    "WarmStartConfig",
    "check_trl_overrides",
]
