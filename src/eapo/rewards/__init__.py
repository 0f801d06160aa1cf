"""Rewards: scorers (answer vs gold) and the composite EAPO reward."""

from eapo.rewards.reward import RewardConfig, composite_reward
from eapo.rewards.scorers import SCORERS, ScoreResult

__all__ = ["SCORERS", "RewardConfig", "ScoreResult", "composite_reward"]
