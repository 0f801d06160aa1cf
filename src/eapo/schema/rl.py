"""The `rl` section: the RL phase on TRL's GRPOTrainer (EAPO.md §4), and the check of its
`rl.trl` pass-through.

`rl.trl` passes extra keys to TRL's `GRPOConfig` as-is. Its keys are checked when the
config is built, against `dataclasses.fields(trl.GRPOConfig)`: trl is imported lazily
and only when `rl.trl` is non-empty (importing it takes seconds), so the default config
stays cheap to load. Keys this config already owns (learning rate, clipping, ...) are
refused there, so that no setting has two sources; `TRL_OWNED_KEYS` says where each one
is set, and the trainer should build `GRPOConfig` from that mapping plus `rl.trl`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eapo.schema.checks import check_int as _int
from eapo.schema.checks import check_one_of as _one_of
from eapo.schema.checks import check_real as _real

__all__ = ["ARMS", "SCALE_REWARDS", "TRL_OWNED_KEYS", "RLConfig", "check_trl_overrides"]

ARMS = ("eapo", "self_rl")
SCALE_REWARDS = ("group", "batch", "none")

# GRPOConfig fields that this config sets itself -> the key to set instead.
TRL_OWNED_KEYS: dict[str, str] = {
    "max_steps": "rl.steps",
    "learning_rate": "rl.learning_rate",
    "temperature": "rollout.temperature",
    "num_generations": "rl.num_generations",
    "loss_type": "rl.loss_type",
    "epsilon": "rl.epsilon",
    "epsilon_high": "rl.epsilon_high",
    "beta": "rl.beta",
    "scale_rewards": "rl.scale_rewards",
    "num_iterations": "rl.num_iterations",
    "save_steps": "rl.save_steps",
    "logging_steps": "rl.log_steps",
    "seed": "seed",
    "output_dir": "output_dir",
    "report_to": "logging.backends",
}


@functools.cache
def _grpo_fields() -> tuple[str, ...]:
    import trl  # slow (seconds): only when there is something to check

    return tuple(f.name for f in dataclasses.fields(trl.GRPOConfig) if f.init)


def check_trl_overrides(overrides: Mapping[str, Any]) -> None:
    """Refuse `rl.trl` keys that `trl.GRPOConfig` does not have (with close matches) and
    keys this config owns (naming the key to set instead). Values are left to TRL.

    Called by `RLConfig.__post_init__` when `rl.trl` is non-empty; importing trl is the
    cost of that check.
    """
    for key in overrides:
        if not isinstance(key, str):
            raise ValueError(f"rl.trl keys must be strings, got {key!r}")
        if key in TRL_OWNED_KEYS:
            raise ValueError(
                f"rl.trl.{key} is set by this config; set {TRL_OWNED_KEYS[key]} instead"
            )
    if not overrides:
        return
    names = _grpo_fields()
    for key in overrides:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; see trl.GRPOConfig"
            raise ValueError(f"rl.trl.{key} is not a field of trl.GRPOConfig{hint}")


@dataclass(frozen=True)
class RLConfig:
    """The RL phase on TRL's GRPOTrainer (EAPO.md §4)."""

    arm: str = "eapo"
    """eapo, or self_rl: the same trainer with the consult action disabled (the baseline)."""
    steps: int = 200
    """Policy updates (global training steps s = 1 .. steps)."""
    prompts_per_step: int = 8
    """Problems per step; each gets num_generations rollouts."""
    num_generations: int = 8
    """G: rollouts per problem, one group for the group-relative advantage."""
    learning_rate: float = 3e-5
    """Learning rate of the RL phase (write 3e-5 or 3.0e-05: both are read as numbers)."""
    loss_type: str = "dapo"
    """TRL loss aggregation; dapo is token-level over all mask-1 tokens of the batch."""
    epsilon: float = 0.2
    """Lower clip of the probability ratio (eps_low)."""
    epsilon_high: float = 0.28
    """Upper clip of the probability ratio ("clip-higher")."""
    beta: float = 0.0
    """KL coefficient to a reference model; 0 as in DAPO (no reference model is loaded)."""
    scale_rewards: str = "group"
    """Divide advantages by the group's std (group), the batch's (batch), or not (none: Dr. GRPO)."""
    num_iterations: int = 1
    """Optimiser passes over each generated batch."""
    save_steps: int = 50
    """Save a checkpoint every this many steps."""
    log_steps: int = 5
    """Log training metrics every this many steps."""
    dump_rollouts_every: int = 25
    """Write the step's episodes to the run folder every this many steps; 0 never."""
    trl: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for trl.GRPOConfig, passed as-is (keys checked, see module doc)."""

    def __post_init__(self) -> None:
        _one_of("rl", "arm", self.arm, ARMS)
        _int("rl", "steps", self.steps)
        _int("rl", "prompts_per_step", self.prompts_per_step)
        _int("rl", "num_generations", self.num_generations, low=2)  # a group of one has no advantage
        _real("rl", "learning_rate", self.learning_rate, open_low=True)
        if not isinstance(self.loss_type, str) or not self.loss_type:
            raise ValueError(f"rl.loss_type must be a TRL loss type name, got {self.loss_type!r}")
        _real("rl", "epsilon", self.epsilon)
        _real("rl", "epsilon_high", self.epsilon_high)
        _real("rl", "beta", self.beta)
        _one_of("rl", "scale_rewards", self.scale_rewards, SCALE_REWARDS)
        _int("rl", "num_iterations", self.num_iterations)
        _int("rl", "save_steps", self.save_steps)
        _int("rl", "log_steps", self.log_steps)
        _int("rl", "dump_rollouts_every", self.dump_rollouts_every, low=0)
        if not isinstance(self.trl, Mapping):
            raise ValueError(f"rl.trl must be a mapping of GRPOConfig keyword arguments, got {self.trl!r}")
        check_trl_overrides(self.trl)
