"""The `reward` section (EAPO.md §3). The reward itself is `eapo.rewards.reward`; the
consultation penalty is the `penalty` section (`eapo.schema.schedules`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RewardConfig"]


@dataclass(frozen=True)
class RewardConfig:
    """R = score if score > 0, format_reward for a well-formed wrong answer, else 0; minus the penalty."""

    format_reward: float = 0.1
    """Reward of a well-formed wrong answer (answer present, tags valid); in [0, 1)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.format_reward < 1.0:
            raise ValueError(f"reward.format_reward must be in [0, 1), got {self.format_reward}")
